"""The audio encoder run by onnxruntime from a cached ONNX export (CPU execution provider here, CUDA EP on a GPU).

Whisper only: the Qwen3-ASR audio tower does not export with ``torch.onnx.export(dynamo=True)`` (its 1-s chunking
has shapes that depend on the audio lengths, data the exporter cannot trace), and the legacy tracer freezes one
audio length into the graph. At load the replacement's output is compared with PyTorch's on real-speech-shaped
input and refused at ``tolerance`` (float32 on both sides, so differences are rounding only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.optimizations.onnx_export import (
    ExportKey,
    OnnxEncoder,
    export_encoder,
    max_abs_difference,
    providers_for,
    weights_fingerprint,
)

OPSET = 18


def replace_encoder(engine: TorchEngine, providers: list, tolerance: float) -> OnnxEncoder:
    """Export (or reuse) the engine's encoder, swap it for the onnxruntime one, and check the two agree."""
    original = engine.encoder_module()
    config = engine.model.config
    frames = 2 * config.max_source_positions  # Whisper's fixed 30-s window of mel frames
    key = ExportKey(engine.model_name, weights_fingerprint(original), config.num_mel_bins, frames, OPSET)
    replacement = OnnxEncoder(original, export_encoder(original, key), providers, engine.device, engine.torch_dtype)
    probe = torch.randn(1, config.num_mel_bins, frames, generator=torch.Generator().manual_seed(0)).to(engine.device)
    difference = max_abs_difference(original.float(), replacement, probe)
    original.to(engine.torch_dtype)
    if difference > tolerance:
        raise RuntimeError(f"the ONNX encoder differs from PyTorch's by {difference:.2e} (> {tolerance:.0e})")
    engine.model.model.encoder = replacement
    engine.watch_encoder()
    engine.stats.setdefault("onnx_encoder", {})["max_abs_difference"] = difference
    return replacement


@register
@dataclass(frozen=True)
class OnnxEncoderPlugin(Plugin):
    name = "onnx_encoder"
    order = 15  # before int8_dynamic (order 20), which then finds no Linear left in the encoder
    requires = Requirements(engines=frozenset({"whisper"}), packages=("onnx", "onnxscript", "onnxruntime"))

    tolerance: float = 1e-3  # max |ONNX - PyTorch| on the encoder's output (float32 rounding is ~1e-5)

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason is not None or target.device_type != "cuda":
            return reason
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return "onnx_encoder on cuda needs onnxruntime-gpu (this onnxruntime has no CUDAExecutionProvider)"
        return None

    def apply(self, engine: TorchEngine) -> TorchEngine:
        replace_encoder(engine, providers_for(engine.device), self.tolerance)
        return engine
