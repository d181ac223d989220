"""PyTorch scaled-dot-product attention (fused flash / memory-efficient / math kernels) instead of eager attention."""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.attention import set_attention
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class SDPA(Plugin):
    name = "sdpa"
    order = 10
    requires = Requirements(conflicts=frozenset({"flash_attention_2"}))

    def apply(self, engine: BaseEngine) -> BaseEngine:
        return set_attention(engine, "sdpa")
