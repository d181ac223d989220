"""The load test's results: outcomes summarised into one record per run, kept as JSON lines in
``reports/serving/loadtest.jsonl`` (load_readme.py renders the README from them).

Units: latencies in ms (``latency_ms``, ``overhead``), throughput in requests and audio seconds per second of the
load window.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from asrforge.experiments.load.clients import KINDS, Outcome

RESULTS = "loadtest.jsonl"
SHOWN = 8  # mismatches and failures kept in a record, as examples
BUSY_HOST = 0.1  # foreign CPU share above which a run's timings are flagged


def percentiles(values: Iterable[float | None]) -> dict[str, float | None]:
    """p50/p95 in ms of seconds ``values`` (None ignored), with how many there were."""
    seconds = [value for value in values if value is not None]
    if not seconds:
        return {"p50": None, "p95": None, "n": 0}
    p50, p95 = np.percentile(np.array(seconds) * 1000, [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "n": len(seconds)}


def word_diff(expected: str, got: str) -> str:
    """Only the words that differ, as ``[-removed-] {+added+}``."""
    a, b = expected.split(), got.split()
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("delete", "replace"):
            parts.append("[-" + " ".join(a[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            parts.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(parts)


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def is_mixup(got: str, own: str, others: Iterable[str]) -> bool:
    """The answer is nearer another file's transcript than its own: a request got someone else's result."""
    mine = _similarity(got, own)
    return any(_similarity(got, other) > mine for other in others if other != own)


def summarise(
    outcomes: Sequence[Outcome], references: Mapping[str, Mapping[str, str]], start: float, stop: float
) -> dict[str, Any]:
    """Counts, latencies, throughput and examples of one load phase: requests start from ``start`` until ``stop``
    (perf_counter); throughput is every answer over the wall time from ``start`` to the last answer."""
    counts: dict[str, dict[str, int]] = {}
    mismatches: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for kind in [*KINDS, "all"]:
        counts[kind] = dict.fromkeys(
            ("sent", "answered", "correct", "mismatched", "mixups", "lost", "4xx", "5xx", "errors", "retries_429"), 0
        )
    for outcome in outcomes:
        expected = references[outcome.kind][outcome.clip]
        verdict = outcome.status
        if outcome.status == "ok":
            verdict = "correct" if outcome.text == expected and outcome.consistent else "mismatched"
        for kind in (outcome.kind, "all"):
            row = counts[kind]
            row["sent"] += 1
            row["retries_429"] += outcome.retries_429
            row["answered"] += outcome.status == "ok"
            row[{"error": "errors"}.get(verdict, verdict)] += 1
        if verdict == "mismatched":
            mixup = is_mixup(outcome.text, expected, references[outcome.kind].values())
            counts[outcome.kind]["mixups"] += mixup
            counts["all"]["mixups"] += mixup
            if len(mismatches) < SHOWN:
                mismatches.append(
                    {
                        "kind": outcome.kind,
                        "clip": outcome.clip,
                        "mixup": mixup,
                        "consistent": outcome.consistent,
                        "diff": word_diff(expected, outcome.text),
                        "expected": expected,
                        "got": outcome.text,
                    }
                )
        elif verdict != "correct" and len(failures) < SHOWN:
            failures.append({"kind": outcome.kind, "clip": outcome.clip, "status": verdict, "detail": outcome.detail})
    answered = [o for o in outcomes if o.status == "ok"]
    last = max((o.finished for o in outcomes if o.finished is not None), default=stop)
    wall = max(last, stop) - start
    latency = {kind: percentiles(o.latency_s for o in answered if o.kind == kind) for kind in KINDS}
    for kind in ("http", "sse"):  # what a request the server admitted waited: the bound max_wait_s keeps
        admitted = percentiles(o.admitted_s for o in answered if o.kind == kind)
        latency[kind].update(admitted_p50=admitted["p50"], admitted_p95=admitted["p95"])
    for kind in ("sse", "ws"):
        first = percentiles(o.first_delta_s for o in answered if o.kind == kind)
        kind_answered = [o for o in answered if o.kind == kind]
        mean_deltas = sum(o.deltas for o in kind_answered) / len(kind_answered) if kind_answered else None
        latency[kind].update(
            first_delta_p50=first["p50"],
            first_delta_p95=first["p95"],
            deltas_per_request=None if mean_deltas is None else round(mean_deltas, 2),
        )
    return {
        "counts": {kind: row for kind, row in counts.items() if row["sent"] or kind == "all"},
        "latency_ms": {kind: value for kind, value in latency.items() if value["n"]},
        "throughput": {
            "window_s": round(stop - start, 1),
            "wall_s": round(wall, 1),
            "answered_in_window": sum(1 for o in answered if o.finished is not None and o.finished <= stop),
            "requests_per_s": round(len(answered) / wall, 3),
            "audio_s_per_s": round(sum(o.audio_s for o in answered) / wall, 2),
        },
        "mismatches": mismatches,
        "failures": failures,
    }


def failed_checks(record: Mapping[str, Any]) -> list[str]:
    """What the study asks of a run that this one missed: every answer its own file's lone-request transcript,
    none lost, no 5xx, no error event."""
    total = record["counts"]["all"]
    checks = [
        (total["lost"], "lost"),
        (total["5xx"], "5xx"),
        (total["errors"], "error events"),
        (total["4xx"], "4xx"),
        (total["mismatched"], "mismatched transcripts"),
        (record["server"].get("log_errors", 0), "errors in the server log"),
    ]
    return [f"{count} {what}" for count, what in checks if count]
