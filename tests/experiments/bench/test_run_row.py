"""Row isolation: a row that crashes or hangs becomes a record with an error, and the harness goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from asrforge.combination import Combination
from asrforge.experiments.bench.run_row import RowSpec, cpu_sample, foreign_cpu_share, run_in_subprocess


def spec(dev_dir, engine: dict) -> RowSpec:
    return RowSpec(
        row="broken",
        combination=Combination(engine=engine),
        manifest=str(dev_dir / "manifest.jsonl"),
        dataset="dev",
        limit=1,
        warmup_calls=0,
    )


def test_a_crashing_row_reports_the_exception(dev_dir):
    result = run_in_subprocess(spec(dev_dir, {"_target_": "asrforge.engines.qwen3_asr.NoSuchConfig"}), timeout_s=120)
    assert set(result) == {"error", "overhead_s"}
    assert "asrforge.engines.qwen3_asr.NoSuchConfig" in result["error"]


def test_a_row_past_its_time_limit_is_killed(dev_dir):
    started = time.monotonic()
    result = run_in_subprocess(
        spec(dev_dir, {"_target_": "asrforge.engines.qwen3_asr.Qwen3ASREngineConfig", "model": "qwen3-asr-tiny"}),
        timeout_s=1,
    )
    assert result["error"] == "timed out after 1 s"
    assert time.monotonic() - started < 30


def test_cpu_used_by_other_processes_while_timing_is_measured():
    # A busy loop in another process takes one core of this machine: a share of at least a fraction of one core.
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        before = cpu_sample()
        time.sleep(1.5)
        share = foreign_cpu_share(before, cpu_sample())
    finally:
        burner.kill()
        burner.wait()
    cpus = os.cpu_count() or 1
    assert share > 0.5 / cpus
