"""TF32 tensor-core matmuls and convolutions for float32 models (Ampere and newer); no effect on bf16/fp16."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class TF32(Plugin):
    name = "tf32"
    order = 0
    requires = Requirements(devices=frozenset({"cuda"}), min_capability=(8, 0), dtypes=frozenset({"float32"}))

    def apply(self, engine: BaseEngine) -> BaseEngine:
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        return engine
