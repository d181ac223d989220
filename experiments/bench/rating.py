"""Each benchmark record with its speed as a ratio to the baseline and to the peer row of its own run and decoding
policy, and the records grouped by (dataset, run): what the report's tables and the plots both show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asrforge.experiments.bench.matrix import BASELINE
from asrforge.experiments.bench.records import BenchRecord


@dataclass(frozen=True)
class RatedRecord:
    record: BenchRecord
    p50_ratio: float | None  # row p50 / baseline p50 of the same run and decoding policy
    vs_peer: float | None  # row p50 / the reference (peer) row's p50 of the same run and decoding policy
    baseline: BenchRecord | None = None  # the unoptimised row of the same run and policy


def rate(records: Sequence[BenchRecord]) -> list[RatedRecord]:
    """Each record with its speed ratios, computed within its own (run, dataset)."""

    def same_run(run: BenchRecord, predicate) -> BenchRecord | None:
        for other in records:
            if (
                other.run_id == run.run_id
                and other.dataset_name == run.dataset_name
                and other.policy == run.policy
                and other.measured
                and predicate(other)
            ):
                return other
        return None

    rated = []
    for record in records:
        baseline = same_run(record, lambda other: other.row.split("@")[0] == BASELINE and not other.reference)
        peer = same_run(record, lambda other: other.reference)
        p50 = record.p50 if record.measured else None
        rated.append(
            RatedRecord(
                record,
                p50_ratio=p50 / baseline.p50 if p50 is not None and baseline else None,
                vs_peer=p50 / peer.p50 if p50 is not None and peer else None,
                baseline=baseline,
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
