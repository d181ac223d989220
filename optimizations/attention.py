"""Switching a loaded transformers model's attention kernel (shared by the sdpa and flash_attention_2 plugins)."""

from __future__ import annotations

from asrforge.engines.base import TorchEngine


def set_attention(engine: TorchEngine, implementation: str) -> TorchEngine:
    """Use ``implementation`` ("sdpa", "flash_attention_2", "eager") in every attention layer of the engine's model."""
    engine.model.set_attn_implementation(implementation)
    return engine
