"""Random weights read back from the cache are the weights a fresh seeded build gives (engines/random_weights.py)."""

from __future__ import annotations

import torch

from asrforge.engines.qwen3_asr import Qwen3ASREngine, Qwen3ASREngineConfig
from asrforge.engines.random_weights import random_weights_file


def _tensors(engine: Qwen3ASREngine) -> dict[str, torch.Tensor]:
    model = engine.model
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def test_a_cached_load_equals_the_seeded_build(tmp_path, monkeypatch):
    monkeypatch.setenv("ASRFORGE_CACHE", str(tmp_path))
    config = Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32")
    cache_file = random_weights_file(config.weights_id())
    assert not cache_file.exists()

    built = Qwen3ASREngine(config)
    assert cache_file.exists()
    state_before = torch.random.get_rng_state()
    loaded = Qwen3ASREngine(config)
    assert torch.equal(torch.random.get_rng_state(), state_before), "a cached load must not draw numbers"

    built_tensors, loaded_tensors = _tensors(built), _tensors(loaded)
    assert built_tensors.keys() == loaded_tensors.keys()
    for name, tensor in built_tensors.items():
        assert torch.equal(tensor, loaded_tensors[name]), name
    other = Qwen3ASREngine(Qwen3ASREngineConfig(model="qwen3-asr-tiny", device="cpu", dtype="float32", seed=1))
    assert random_weights_file(other.config.weights_id()) != cache_file
    assert not torch.equal(_tensors(other)["lm_head.weight"], built_tensors["lm_head.weight"])
