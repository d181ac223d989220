"""torch.compile (Inductor) of the audio encoder and of the decoder step.

The decoder is compiled the way transformers supports it: with a static KV cache in the combination, ``generate``
compiles its per-token forward itself from a ``CompileConfig`` (fixed shapes: one compile, then reused); without one,
the decoder module is compiled with dynamic shapes so a growing cache does not recompile every step. Compiled
``forward`` methods replace the modules' own, so the engine's timing hooks stay outside the compiled graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Target, register

TARGETS = ("encoder", "decoder")


@register
@dataclass(frozen=True)
class TorchCompile(Plugin):
    name = "torch_compile"
    order = 60  # after weight changes (quantization) and the cache choice, which change what gets compiled

    targets: tuple[str, ...] = TARGETS
    mode: str | None = None  # None = Inductor's default; "reduce-overhead" adds CUDA graphs; "max-autotune"
    dynamic: bool | None = None  # None = let dynamo decide (static first, dynamic after a shape change)
    fullgraph: bool = False

    def refusal(self, target: Target) -> str | None:
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown:
            return f"torch_compile: unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})"
        if self.mode == "reduce-overhead" and target.device_type != "cuda":
            return "torch_compile mode reduce-overhead captures CUDA graphs and needs a cuda device"
        return super().refusal(target)

    def apply(self, engine: TorchEngine) -> TorchEngine:
        if "encoder" in self.targets:
            encoder = engine.encoder_module()
            encoder.forward = torch.compile(
                encoder.forward, mode=self.mode, dynamic=self.dynamic, fullgraph=self.fullgraph
            )
        if "decoder" in self.targets:
            if engine.generate_kwargs.get("cache_implementation") == "static":
                from transformers import CompileConfig

                config = CompileConfig(fullgraph=self.fullgraph, dynamic=self.dynamic, mode=self.mode or "default")
                # transformers only auto-compiles on accelerators unless told that every device is fine.
                config._compile_all_devices = True
                engine.generate_kwargs["compile_config"] = config
            else:
                decoder = engine.decoder_module()
                decoder.forward = torch.compile(decoder.forward, mode=self.mode, dynamic=True, fullgraph=self.fullgraph)
        return engine
