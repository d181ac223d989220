"""The CLI study end to end: both commands really run as processes on a real clip, and the report says so."""

from __future__ import annotations

import json

from asrforge.experiments.cli import run


def test_cli_study_times_both_whole_commands_and_renders_the_ratio(tmp_path, dev_dir):
    assert run.main(["--rounds", "1", "--sets", "one", "--threads", "1", "--report-dir", str(tmp_path)]) == 0
    (device,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    (record,) = [json.loads(line) for line in (device / "cli.jsonl").read_text().splitlines()]
    assert record["set"] == "one" and record["files"] == 1 and record["threads"] == 1
    ours, peer = record["wall_s"]["asrforge"], record["wall_s"]["faster-whisper"]
    assert len(ours) == len(peer) == 1 and ours[0] > 0 and peer[0] > 0
    assert abs(record["ratio"] - ours[0] / peer[0]) < 1e-3
    report = (device / "cli.md").read_text()
    assert "| `one`: one 3.3-s clip" in report and f"{record['ratio']:.3f}×" in report


def test_the_peer_command_prints_the_clip_s_text(dev_dir):
    import subprocess
    import sys

    clip = dev_dir / run.SHORT_CLIP
    done = subprocess.run([sys.executable, str(run.PEER), "--threads", "1", str(clip)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]
    assert "kittens" in done.stdout.lower()
