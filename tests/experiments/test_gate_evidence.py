"""The gate's evidence: runs spread evenly over processes, and the README's rates counted from the records."""

from __future__ import annotations

from asrforge.experiments.gate_evidence import schedule
from asrforge.experiments.gate_readme import evidence_section


def test_every_process_runs_unchanged_first_and_the_runs_add_up():
    plan = schedule(unchanged=12, slowed=6, processes=6, slowdown=0.15)
    assert plan == [[0.0, 0.0, 0.15]] * 6
    uneven = schedule(unchanged=5, slowed=2, processes=3, slowdown=0.15)
    assert sum(map(len, uneven)) == 7 and all(run == sorted(run) for run in uneven)


def record(slowdown: float, verdict: str, change: float, process: int) -> dict:
    speed = {"name": "winner / peer", "verdict": verdict, "change": change, "p_value": 0.001}
    return {
        "batch": "b1",
        "process": process,
        "slowdown": slowdown,
        "verdict": verdict,
        "figures": [speed, {"name": "winner WER %", "verdict": "pass", "change": 0.0, "p_value": None}],
        "trials": 8,
        "threads": 1,
        "baseline_timestamp": "2026-12-01T20:00:00+00:00",
        "wall_s": 120.0,
        "foreign_cpu": 0.5,
        "load_average": [4.0, 5.0],
        "device": {"name": "a CPU", "cpu_count": 2},
    }


def test_the_readme_counts_false_positives_and_detections_from_the_records():
    records = [
        record(0.0, "pass", 0.01, 0),
        record(0.0, "regression", 0.12, 0),
        record(0.15, "regression", 0.16, 0),
        record(0.0, "pass", -0.02, 1),
        record(0.0, "pass", 0.03, 1),
        record(0.15, "pass", 0.07, 1),
    ]
    text = evidence_section(records)
    assert "| unchanged | 4 | 1 | false-positive rate 25% |" in text
    assert "| slowed 15% | 2 | 1 | detection rate 50% |" in text
    assert "| b1 | 1 | " in text  # the batch and its threads per engine
    assert "spread over 2 fresh processes" in text and "load average 4.0 to 5.0" in text
