"""A GPU serves its own winner, else the `cuda` one every GPU bench writes, else the embedded default with a loud
warning naming what runs and why (no GPU in CI: the GPU is faked where only its name and presence matter)."""

from __future__ import annotations

import logging

import torch

from asrforge import winner
from asrforge.combination import DEFAULT_ENGINE
from asrforge.experiments.bench.winner import update_winner
from asrforge.winner import GPU_FALLBACK, load_winner, resolve_combination


def test_a_gpu_without_its_own_entry_takes_the_cuda_one_and_a_cpu_never_does(tmp_path, make_record):
    path = tmp_path / "winner.yaml"
    update_winner(path, GPU_FALLBACK, make_record("sdpa", 50.0, 5.0, device="nvidia-h100-80gb-hbm3"))
    assert load_winner("nvidia-h200", path).plugins == ["sdpa"]
    assert load_winner("cpu", path) is None
    update_winner(path, "nvidia-h200", make_record("static_cache", 40.0, 5.0, device="nvidia-h200"))
    assert load_winner("nvidia-h200", path).plugins == ["static_cache"]


def test_a_gpu_without_a_winner_warns_loudly_that_the_default_runs_unoptimised(
    tmp_path, make_record, monkeypatch, caplog
):
    path = tmp_path / "winner.yaml"
    update_winner(path, "cpu", make_record("int8_dynamic", 700.0, 5.2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(winner, "default_device_key", lambda: "nvidia-h200")
    with caplog.at_level(logging.WARNING, logger="asrforge.winner"):
        combination, origin = resolve_combination(winner_file=str(path))
    assert origin == "embedded default" and combination.plugins == []
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert "NO GPU WINNER" in warning and "nvidia-h200" in warning and DEFAULT_ENGINE in warning
    assert "asrforge bench +bench=gpu" in warning


def test_a_cpu_without_a_winner_starts_the_default_quietly(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="asrforge.winner"):
        combination, origin = resolve_combination(winner_file=str(tmp_path / "none.yaml"))
    assert origin == "embedded default" and not caplog.records


def test_a_winner_measured_on_random_weights_warns_unless_a_checkpoint_is_given(
    tmp_path, make_record, monkeypatch, caplog
):
    path = tmp_path / "winner.yaml"
    measured = make_record("gpu-bf16", 320.0, random_weights=True, device="nvidia-h200", plugins=("cuda_graphs",))
    update_winner(path, "nvidia-h200", measured)
    monkeypatch.setattr(winner, "default_device_key", lambda: "nvidia-h200")
    with caplog.at_level(logging.WARNING, logger="asrforge.winner"):
        combination, origin = resolve_combination(winner_file=str(path))
    assert origin == "benchmark winner" and combination.plugins == ["cuda_graphs"]
    (warning,) = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert "RANDOM WEIGHTS" in warning and "--model" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asrforge.winner"):
        combination, _ = resolve_combination(winner_file=str(path), model="/models/qwen3-asr-1.7b")
    assert combination.engine["model"] == "/models/qwen3-asr-1.7b" and not caplog.records
