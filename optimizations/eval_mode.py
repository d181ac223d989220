"""Inference mode: frozen parameters and ``torch.inference_mode`` instead of ``no_grad``.

transformers already returns models in ``eval()`` (no dropout), so the measurable part of this switch is
``inference_mode``, which also skips autograd's version-counter and view tracking on every tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, register


@register
@dataclass(frozen=True)
class EvalMode(Plugin):
    name = "eval_mode"
    order = 0

    def apply(self, engine: TorchEngine) -> TorchEngine:
        engine.model.eval()
        engine.model.requires_grad_(False)
        engine.inference_mode = True
        return engine
