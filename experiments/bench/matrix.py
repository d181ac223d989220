"""The benchmark matrix: which combinations a run measures.

A matrix config (``conf/matrix/*.yaml``) lists explicit ``rows`` (the peer reference and the ``baseline``), the
``singles`` (each plugin alone on the run's engine) and optional ``combos``. After the singles have run, ``auto_best``
combines every single that beat the baseline without costing accuracy into one more row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asrforge.experiments.bench.records import BenchRecord

BASELINE = "baseline"
AUTO_BEST = "auto-best"


@dataclass(frozen=True)
class Row:
    name: str
    plugins: tuple[str, ...] = ()
    engine: str | None = None  # a conf/engine option; None = the run's engine
    reference: bool = False  # a peer row: shown and used as the speed reference, never the winner


def expand(matrix: Mapping[str, Any]) -> list[Row]:
    """The rows a matrix config names, in run order: ``rows``, then ``singles``, then ``combos``."""
    rows = [_row(entry) for entry in matrix.get("rows") or ()]
    rows += [Row(name=name, plugins=(name,)) for name in matrix.get("singles") or ()]
    rows += [_row(entry) for entry in matrix.get("combos") or ()]
    names = [row.name for row in rows]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"matrix rows must have distinct names; repeated: {', '.join(duplicates)}")
    return rows


def _row(entry: Mapping[str, Any]) -> Row:
    return Row(
        name=str(entry["name"]),
        plugins=tuple(entry.get("plugins") or ()),
        engine=entry.get("engine"),
        reference=bool(entry.get("reference", False)),
    )


def within_tolerance(record: BenchRecord, baseline: BenchRecord, tolerance_points: float) -> bool:
    """Accuracy no worse than the baseline's by more than ``tolerance_points`` (WER, else CER; random weights: any)."""
    for metric in ("wer", "cer"):
        reference, value = getattr(baseline, metric), getattr(record, metric)
        if reference is None:
            continue
        if value is None or value > reference + tolerance_points:
            return False
    return True


def auto_best(
    rows: Sequence[Row],
    records: Sequence[BenchRecord],
    refusal: Callable[[list[str]], str | None],
    tolerance_points: float,
    min_gain: float,
) -> Row | None:
    """The union of the singles that beat the baseline's p50 by more than ``min_gain`` (a fraction) within the WER
    tolerance; when two cannot be combined (``refusal`` of the list says why), the one with the smaller gain is
    dropped. None unless at least two plugins remain, or when an existing row already is that combination.
    """
    by_name = {record.row: record for record in records}
    baseline = by_name.get(BASELINE)
    if baseline is None or not baseline.measured:
        return None
    gains: dict[str, float] = {}
    for row in rows:
        record = by_name.get(row.name)
        if len(row.plugins) != 1 or row.engine is not None or row.reference or record is None or not record.measured:
            continue
        gain = 1.0 - record.p50 / baseline.p50
        if gain > min_gain and within_tolerance(record, baseline, tolerance_points):
            gains[row.plugins[0]] = gain
    chosen: list[str] = []
    for name in sorted(gains, key=gains.get, reverse=True):
        if refusal([*chosen, name]) is None:
            chosen.append(name)
    if len(chosen) < 2:
        return None
    if any(set(row.plugins) == set(chosen) and row.engine is None for row in rows):
        return None
    return Row(name=AUTO_BEST, plugins=tuple(chosen))
