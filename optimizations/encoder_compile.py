"""torch.compile (Inductor) of the audio encoder alone, leaving the decoder loop eager.

Whisper's encoder always sees the same 30-s window (3000 mel frames), so its graph is static: one compile per batch
size, no recompiles from audio length, and none of the decoder's per-token compile and guard costs. It is the part of
``torch_compile`` that pays off on its own on a CPU, where the decoder's small per-token matmuls gain little.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class EncoderCompile(Plugin):
    name = "encoder_compile"
    order = 60  # compilation stage: after weight changes, so the compiled graph is the final encoder
    requires = Requirements(conflicts=frozenset({"torch_compile", "onnx_encoder", "tensorrt_encoder"}))

    mode: str | None = None  # None = Inductor's default; "max-autotune" tunes kernels (minutes of compile)
    dynamic: bool = False  # the window is fixed: specialise on it

    def apply(self, engine: TorchEngine) -> TorchEngine:
        encoder = engine.encoder_module()
        # The compiled forward replaces the module's own, so the engine's timing hooks stay outside the graph.
        encoder.forward = torch.compile(encoder.forward, mode=self.mode, dynamic=self.dynamic)
        return engine
