"""The bench's head-to-head: the winner and the peer in one worker, call by call, at a set thread count."""

from __future__ import annotations

import math

import pytest

from asrforge.audio import load_audio
from asrforge.config import decode_policy
from asrforge.experiments.bench import head_to_head
from asrforge.winner import load_winner

CLIPS = ["fasterwhisper_jfk.wav", "librispeech_1988-24833-0000.wav"]


def test_the_interval_narrows_with_agreeing_trials_and_decides_at_the_resolution():
    steady = [math.log(0.5) + d for d in (0.01, -0.01, 0.005, -0.005)]
    value, low, high = head_to_head.interval(steady)
    assert low < value < high and value == pytest.approx(0.5, rel=0.01)
    assert head_to_head.decided(steady, 0.05)
    noisy = [math.log(0.5) + d for d in (0.3, -0.3, 0.2)]
    assert not head_to_head.decided(noisy, 0.05)
    assert not head_to_head.decided(steady[:1], 0.05)  # one trial decides nothing


def test_head_to_head_runs_both_engines_at_the_thread_count_and_policy(dev_dir):
    winner = load_winner("cpu")
    subject = {"engine": winner.engine, "plugins": list(winner.plugins), "settings": winner.settings}
    audio = [load_audio(dev_dir / name) for name in CLIPS]
    seen: list[tuple[int, float]] = []
    settings = {"min_trials": 2, "max_trials": 2, "resolution": 0.05, "budget_s": 60}
    body = head_to_head.measure(
        subject, "faster-whisper-tiny-en", audio, decode_policy("greedy"), 1, settings, lambda *t: seen.append(t)
    )
    assert body["threads"] == 1 and body["trials"] == 2 and body["files"] == 2
    assert [trial for trial, _ in seen] == [1, 2]
    ratio = body["ratio"]
    assert ratio["low"] <= ratio["value"] <= ratio["high"]
    assert body["p50_ms"]["winner"] > 0 and body["p50_ms"]["peer"] > 0
    assert body["p50_ratio"] == pytest.approx(body["p50_ms"]["winner"] / body["p50_ms"]["peer"], rel=1e-3)
    assert body["subjects"]["winner"]["plugins"] == list(winner.plugins)
    assert body["subjects"]["peer"]["engine"]["_target_"].endswith("FasterWhisperConfig")
    record = {**body, "run_id": "r", "commit": "c", "winner": "w", "peer": "p", "policy": "greedy"}
    lines = head_to_head.render([{**record, "dataset": {"name": "dev"}}])
    assert any(line.startswith("| 1 | 2 |") for line in lines)
