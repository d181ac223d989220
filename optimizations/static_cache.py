"""A pre-allocated (static) KV cache for generate: fixed shapes, so the decoder step can be compiled / graph-captured.

transformers reuses the cache across calls while the batch size is unchanged and the needed length fits, so shapes
stay fixed after the first call; alone (without compilation) it mostly trades allocation for attention over padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, register


@register
@dataclass(frozen=True)
class StaticCache(Plugin):
    name = "static_cache"
    order = 40

    def apply(self, engine: TorchEngine) -> TorchEngine:
        engine.generate_kwargs["cache_implementation"] = "static"
        return engine
