"""FP8 (e4m3) linear layers through torchao: weights with one scale per output row, activations quantized per row
at run time (``Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())``).

Needs FP8 tensor cores (compute capability 8.9: Ada, Hopper) and a bfloat16 model (torchao's row-wise scaled matmul
takes bf16 in and out). Layers whose sizes are not multiples of 16 (what the FP8 GEMM needs) stay in bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register

TARGETS = ("encoder", "decoder", "lm_head")


def fp8_eligible(module: torch.nn.Module, fqn: str = "") -> bool:
    """A Linear the FP8 GEMM can take: both dimensions multiples of 16."""
    return isinstance(module, torch.nn.Linear) and module.in_features % 16 == 0 and module.out_features % 16 == 0


@register
@dataclass(frozen=True)
class FP8(Plugin):
    name = "fp8"
    order = 20
    requires = Requirements(
        devices=frozenset({"cuda"}),
        min_capability=(8, 9),
        dtypes=frozenset({"bfloat16"}),
        packages=("torchao",),
        conflicts=frozenset({"int8_dynamic", "smoothquant_int8"}),
    )

    targets: tuple[str, ...] = ("decoder", "lm_head")  # the decoder is what runs per token

    def refusal(self, target: Target) -> str | None:
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown:
            return f"fp8: unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})"
        return super().refusal(target)

    def apply(self, engine: TorchEngine) -> TorchEngine:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

        config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
        if "encoder" in self.targets:
            quantize_(engine.encoder_module(), config, filter_fn=fp8_eligible)
        if "decoder" in self.targets:
            quantize_(engine.decoder_module(), config, filter_fn=fp8_eligible)
        if "lm_head" in self.targets:
            head = engine.model.get_output_embeddings()
            # A tied head shares the input embedding's weight: give it its own copy so the table stays bf16.
            head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
            quantize_(torch.nn.Sequential(head), config, filter_fn=fp8_eligible)
        return engine
