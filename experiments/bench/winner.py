"""Winner selection: per device and decoding policy, the fastest row that costs no accuracy against the unoptimised
baseline, judged on the dataset's *tuning* part only: its p50 over the tuning files, and a paired bootstrap over those
files (the 95 % interval of the WER difference to the baseline lies below the tolerance, ``wer_tolerance_points``:
non-inferiority, bootstrap.costs_no_accuracy). The test part never
takes part in the choice; the report scores every row on it. Records without a split or without per-file error
counts (random weights) fall back to the whole-set p50 and a WER tolerance in points.

This module selects and writes ``reports/winner.yaml``; the runtime reads it (asrforge/winner.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from asrforge.experiments.bench.bootstrap import costs_no_accuracy
from asrforge.experiments.bench.matrix import BASELINE, within_tolerance
from asrforge.experiments.bench.parts import difference_to, has_split, part_files, part_p50, part_rate
from asrforge.experiments.bench.records import BenchRecord
from asrforge.winner import read_winners


def select_winner(records: Sequence[BenchRecord], tolerance_points: float) -> BenchRecord | None:
    """The fastest measured, non-reference row of one run at the baseline's decoding policy that costs no accuracy
    (see the module text); None without a measured baseline."""
    baseline = next((r for r in records if r.row == BASELINE and not r.reference and r.measured), None)
    if baseline is None:
        return None
    candidates = [r for r in records if r.measured and not r.reference and r.policy == baseline.policy]
    if has_split(baseline) and part_files(baseline, "tune"):
        eligible = [
            r
            for r in candidates
            if (d := difference_to(r, baseline, "tune")) and costs_no_accuracy(d, tolerance_points)
        ]
        return min(eligible, key=lambda record: part_p50(record, "tune"), default=None)
    eligible = [r for r in candidates if within_tolerance(r, baseline, tolerance_points)]
    return min(eligible, key=lambda record: record.p50, default=None)


def _rounded(interval) -> list[float] | None:
    return None if interval is None else [round(interval.value, 3), round(interval.low, 3), round(interval.high, 3)]


def winner_entry(record: BenchRecord) -> dict[str, Any]:
    combination = record.combination
    return {
        "row": record.row,
        "policy": record.policy,
        "decode": record.decode,  # the decoding policy the server decodes with unless its config names another
        "engine_option": combination.get("engine_option"),
        "engine": combination["engine_config"],
        "plugins": list(combination.get("plugins") or []),
        "settings": combination.get("settings") or {},
        "metrics": {
            "p50_ms": record.p50,
            "p95_ms": (record.latency_ms or {}).get("p95"),
            "rtf": record.rtf,
            "wer": record.wer,
            "cer": record.cer,
            "tune_wer": _rounded(part_rate(record, "tune")),  # [value, 95 % low, high]
            "test_wer": _rounded(part_rate(record, "test")),
            "first_call_ms": record.first_call_ms,
            "peak_mem_mb": record.peak_mem_mb,
        },
        "random_weights": record.random_weights,
        "dataset": record.dataset_name,
        "run_id": record.run_id,
        "commit": record.commit,
        "timestamp": record.timestamp,
    }


def update_winner(path: str | os.PathLike, device_key: str, record: BenchRecord) -> tuple[dict[str, Any], bool]:
    """Set ``device_key``'s entry to ``record``, keeping other devices. A winner with real weights is not replaced by
    one with random weights (the server would start a model that outputs noise). Returns (entry in force, replaced)."""
    path = Path(path)
    winners = read_winners(path)
    current = winners.get(device_key)
    if current and not current.get("random_weights") and record.random_weights:
        return current, False
    winners[device_key] = winner_entry(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Written by `asrforge bench` (experiments/bench/winner.py); "
        "`asrforge serve` starts from the entry of its device.\n"
    )
    path.write_text(header + yaml.safe_dump(winners, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return winners[device_key], True
