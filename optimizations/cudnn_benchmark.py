"""cuDNN autotuning of the audio front-end's convolutions (pays off because input shapes repeat, e.g. 30-s windows)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class CudnnBenchmark(Plugin):
    name = "cudnn_benchmark"
    order = 0
    requires = Requirements(devices=frozenset({"cuda"}))

    def apply(self, engine: BaseEngine) -> BaseEngine:
        torch.backends.cudnn.benchmark = True
        return engine
