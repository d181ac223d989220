"""``asrforge bench`` end to end, as a user runs it: real audio, real Whisper tiny.en, the real peer, each row in its
own process, and every output the run promises (records, README, plots, config, winner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from asrforge.experiments.bench.records import read_records


def bench(tmp_path: Path, *overrides: str) -> Path:
    """Run the Hydra app in a subprocess with its outputs under ``tmp_path``; returns the report root."""
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "asrforge.cli", "run", "bench", f"report.dir={reports}", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return reports


def test_smoke_matrix_measures_refuses_reports_and_picks_a_winner(tmp_path, dev_dir):
    reports = bench(
        tmp_path,
        "matrix=smoke",
        "dataset.limit=2",
        "bench.warmup_calls=1",
        "decode=greedy",
        "bench.compare_policies=[beam5]",
        "bench.head_to_head.threads=[1]",
        "bench.head_to_head.min_trials=2",
        "bench.head_to_head.max_trials=2",
    )
    (device_dir,) = [path for path in reports.iterdir() if path.is_dir()]
    records = {record.row: record for record in read_records(device_dir / "results.jsonl")}
    winner_row = yaml.safe_load((reports / "winner.yaml").read_text())[device_dir.name]["row"]
    again = {"faster-whisper-int8@beam5", "baseline@beam5", f"{winner_row}@beam5"}
    assert set(records) == {"faster-whisper-int8", "baseline", "eval_mode", "eval-mode-on-faster-whisper"} | again
    assert len({record.run_id for record in records.values()}) == 1
    # Every row of the matrix decodes with the run's policy, the peer's too; the re-runs with the compared one.
    assert {records[row].policy for row in ("faster-whisper-int8", "baseline", "eval_mode")} == {"greedy"}
    assert all(records[row].policy == "beam5" and records[row].decode["beam_size"] == 5 for row in again)
    assert records["faster-whisper-int8@beam5"].reference and records["faster-whisper-int8@beam5"].measured

    for row in ("faster-whisper-int8", "baseline", "eval_mode"):
        record = records[row]
        assert record.error is None and record.refused is None, (row, record.error)
        assert record.dataset["files"] == 2 and record.dataset["audio_s"] > 10
        assert 0 < record.latency_ms["p50"] <= record.latency_ms["p95"]
        assert record.first_call_ms > 0 and record.load_s > 0 and record.rtf > 0 and record.peak_mem_mb > 100
        assert record.tokens_per_s > 0
        # Two clean read-speech clips: Whisper tiny.en gets nearly every word right.
        assert record.wer is not None and 0 <= record.wer < 20, (row, record.wer, record.files)
        assert len(record.files) == 2 and all(file["hypothesis"] for file in record.files)
        assert record.overhead_s["startup"] > 0 and record.overhead_s["wall"] > record.overhead_s["startup"]
    assert records["faster-whisper-int8"].reference
    assert records["eval_mode"].combination["plugins"] == ["eval_mode"]
    assert records["eval_mode"].combination["settings"]["eval_mode"]["_target_"].endswith("EvalMode")
    assert records["baseline"].stage_ms["encode"] > 0 and records["baseline"].stage_ms["decode"] > 0

    refused = records["eval-mode-on-faster-whisper"]
    assert refused.refused.startswith("eval_mode needs engine") and refused.latency_ms is None and refused.wer is None

    readme = (device_dir / "README.md").read_text()
    assert f"refused: {refused.refused}" in readme and "p50 ratio" in readme and "vs peer" in readme
    for plot in ("dev_latency_vs_wer.png", "dev_p50_ratio.png"):
        assert (device_dir / plot).stat().st_size > 1000
    assert yaml.safe_load((device_dir / "config.yaml").read_text().split("\n", 1)[1])["matrix"]["singles"] == [
        "eval_mode"
    ]

    winner = yaml.safe_load((reports / "winner.yaml").read_text())[device_dir.name]
    assert winner["row"] in {"baseline", "eval_mode"}
    # Then the winner and the peer head to head at the run's policy, one record per thread count.
    (duel,) = [json.loads(line) for line in (device_dir / "head_to_head.jsonl").read_text().splitlines()]
    assert (duel["winner"], duel["peer"], duel["policy"], duel["threads"]) == (
        winner["row"],
        "faster-whisper-int8",
        "greedy",
        1,
    )
    assert duel["trials"] == 2 and duel["p50_ms"]["peer"] > 0 and duel["run_id"] == winner["run_id"]
    assert "## Winner vs peer, head to head" in readme
    assert winner["engine"]["_target_"] == "asrforge.engines.whisper.WhisperConfig"
    assert winner["metrics"]["wer"] <= records["baseline"].wer + 0.3


def test_random_weights_get_latency_but_no_wer(tmp_path, dev_dir):
    reports = bench(
        tmp_path,
        "engine=qwen3-asr-tiny",
        "dataset.limit=1",
        "bench.warmup_calls=0",
        "matrix.singles=[]",
        "matrix.combos=[]",
        "matrix.rows=[{name:baseline}]",
        "decode=greedy",
        "bench.compare_policies=[]",
    )
    (device_dir,) = [path for path in reports.iterdir() if path.is_dir()]
    (record,) = read_records(device_dir / "results.jsonl")
    assert record.random_weights and record.wer is None and record.cer is None
    assert record.latency_ms["p50"] > 0 and record.files[0]["error_rate"] is None
    assert "| n/a | n/a |" in (device_dir / "README.md").read_text()
