"""A record's figures on one part of its dataset: the *tuning* part (``split.tune`` in ``conf/dataset/<name>.yaml``,
stored in the record as ``dataset.tune``), the only files winner selection reads, and the *test* part (every other
file), read only for reporting. Rates come with 95 % bootstrap intervals over files (experiments/bench/bootstrap.py).

A record without a split (a dataset that has none, an old record) has one part, ``all``, and no test part.
"""

from __future__ import annotations

import statistics
from typing import Literal

from asrforge.experiments.bench.bootstrap import Interval, corpus_rate, paired_difference
from asrforge.experiments.bench.records import BenchRecord

Part = Literal["tune", "test", "all"]


def has_split(record: BenchRecord) -> bool:
    return bool(record.dataset.get("tune"))


def part_files(record: BenchRecord, part: Part) -> list[dict]:
    """The record's per-file entries of ``part`` (with error counts; none for random weights or old records)."""
    tune = set(record.dataset.get("tune") or ())
    files = [entry for entry in record.files or () if entry.get("errors") is not None]
    if part == "all" or not tune:
        return files if part != "test" or tune else []
    return [entry for entry in files if (entry["audio"] in tune) == (part == "tune")]


def part_rate(record: BenchRecord, part: Part) -> Interval | None:
    """Corpus WER (CER for zh/ja/ko files) of the part, with its 95 % interval; None when it has no scored file."""
    files = part_files(record, part)
    if not files:
        return None
    return corpus_rate([f["errors"] for f in files], [f["words"] for f in files])


def part_p50(record: BenchRecord, part: Part) -> float | None:
    """Median per-file latency over the part (each file's mean over the timed passes)."""
    latencies = [entry["latency_ms"] for entry in record.files or () if entry.get("latency_ms") is not None]
    tune = set(record.dataset.get("tune") or ())
    if tune and part != "all":
        latencies = [
            entry["latency_ms"] for entry in record.files or () if (entry["audio"] in tune) == (part == "tune")
        ]
    return statistics.median(latencies) if latencies else None


def difference_to(record: BenchRecord, baseline: BenchRecord, part: Part) -> Interval | None:
    """WER(record) - WER(baseline) in points on the part's files both scored, with its 95 % paired interval."""
    mine = {entry["audio"]: entry for entry in part_files(record, part)}
    theirs = {entry["audio"]: entry for entry in part_files(baseline, part)}
    common = [name for name in mine if name in theirs]
    if not common:
        return None
    return paired_difference(
        [mine[name]["errors"] for name in common],
        [theirs[name]["errors"] for name in common],
        [theirs[name]["words"] for name in common],
    )
