"""Each benchmark record with its speed as a ratio to the baseline and to the peer row of its own run, and the
records grouped by (dataset, run): what the report's tables and the plots both show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asrforge.experiments.bench.matrix import BASELINE
from asrforge.experiments.bench.records import BenchRecord


@dataclass(frozen=True)
class RatedRecord:
    record: BenchRecord
    p50_ratio: float | None  # row p50 / baseline p50 of the same run
    vs_peer: float | None  # row p50 / the reference (peer) row's p50 of the same run


def rate(records: Sequence[BenchRecord]) -> list[RatedRecord]:
    """Each record with its speed ratios, computed within its own (run, dataset)."""

    def p50_of(run: BenchRecord, predicate) -> float | None:
        for other in records:
            if (
                other.run_id == run.run_id
                and other.dataset_name == run.dataset_name
                and other.measured
                and predicate(other)
            ):
                return other.p50
        return None

    rated = []
    for record in records:
        baseline = p50_of(record, lambda other: other.row == BASELINE and not other.reference)
        peer = p50_of(record, lambda other: other.reference)
        p50 = record.p50 if record.measured else None
        rated.append(
            RatedRecord(
                record,
                p50_ratio=p50 / baseline if p50 is not None and baseline else None,
                vs_peer=p50 / peer if p50 is not None and peer else None,
            )
        )
    return rated


def runs(rated: Sequence[RatedRecord]) -> list[tuple[str, str, list[RatedRecord]]]:
    """(dataset, run_id, rows) groups: datasets by name, newest run first, rows in run order."""
    groups: dict[tuple[str, str], list[RatedRecord]] = {}
    for item in rated:
        groups.setdefault((item.record.dataset_name or "?", item.record.run_id or "?"), []).append(item)
    newest_first = sorted(
        groups, key=lambda key: max(item.record.timestamp or "" for item in groups[key]), reverse=True
    )
    order = sorted(newest_first, key=lambda key: key[0])  # stable: within a dataset, newest run first
    return [(dataset, run_id, groups[(dataset, run_id)]) for dataset, run_id in order]
