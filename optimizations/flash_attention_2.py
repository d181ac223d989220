"""The flash-attn package's FlashAttention-2 kernels (CUDA, fp16/bf16). SDPA's flash backend is the portable sibling."""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.attention import set_attention
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class FlashAttention2(Plugin):
    name = "flash_attention_2"
    order = 10
    requires = Requirements(
        devices=frozenset({"cuda"}),
        min_capability=(8, 0),
        dtypes=frozenset({"float16", "bfloat16"}),
        packages=("flash_attn",),
        conflicts=frozenset({"sdpa"}),
    )

    def apply(self, engine: BaseEngine) -> BaseEngine:
        return set_attention(engine, "flash_attention_2")
