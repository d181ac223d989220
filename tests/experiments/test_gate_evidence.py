"""The gate's evidence: runs interleaved so that load falls on unchanged and slowed runs alike, and the README's
rates counted from the records, per batch and load condition."""

from __future__ import annotations

from asrforge.experiments.gate.evidence import schedule
from asrforge.experiments.gate.readme import evidence_section


def test_unchanged_and_slowed_runs_alternate_and_add_up():
    runs = schedule(unchanged=4, slowed=2, slowdowns=[0.10, 0.15])
    assert runs == [0.0, 0.10, 0.0, 0.15, 0.0, 0.10, 0.0, 0.15]
    assert schedule(unchanged=1, slowed=1, slowdowns=[0.15, 0.2]) == [0.0, 0.15, 0.2]


def record(slowdown: float, verdict: str, change: float, run: int, foreign: float) -> dict:
    speed = {"name": "winner speed", "verdict": verdict, "change": change, "p_value": 0.001}
    return {
        "batch": "b1",
        "run": run,
        "slowdown": slowdown,
        "verdict": verdict,
        "exit_status": 1 if verdict == "regression" else 0,
        "figures": [speed, {"name": "winner WER %", "verdict": "pass", "change": 0.0, "p_value": None}],
        "trials": 8,
        "wall_s": 120.0,
        "foreign_cpu": foreign,
        "load_average": [4.0, 5.0],
        "device": {"name": "a CPU", "cpu_count": 2},
    }


def test_the_readme_counts_false_positives_and_detections_per_load_condition():
    records = [
        record(0.0, "pass", 0.01, 0, 0.6),
        record(0.0, "regression", 0.12, 1, 0.7),
        record(0.15, "regression", 0.16, 2, 0.6),
        record(0.0, "pass", -0.02, 3, 0.1),
        record(0.15, "pass", 0.07, 4, 0.6),
    ]
    text = evidence_section(records)
    assert "| b1 | loaded | unchanged | 2 | 1 | false-positive rate 50% |" in text
    assert "| b1 | quiet | unchanged | 1 | 0 | false-positive rate 0% |" in text
    assert "| b1 | loaded | slowed 15% | 2 | 1 | detection rate 50% |" in text
    assert "load average 4.0 to 5.0" in text and "| b1 | 4 | slowed 15% | pass | 0 |" in text
