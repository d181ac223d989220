"""The audio encoder as a TensorRT engine, through onnxruntime's TensorRT execution provider.

Built from the same cached ONNX export as ``onnx_encoder`` (Whisper only, for the same reason), in fp16, with the
built TensorRT engine cached beside the export (building one takes minutes). Refused where TensorRT is absent: the
PyPI ``tensorrt`` package is a stub that downloads the real wheel from NVIDIA's index, which these machines cannot
reach, and onnxruntime-gpu only offers the provider when TensorRT's libraries load.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.optimizations.onnx_encoder import replace_encoder
from asrforge.optimizations.onnx_export import providers_for
from asrforge.paths import cache_dir


@register
@dataclass(frozen=True)
class TensorRTEncoder(Plugin):
    name = "tensorrt_encoder"
    order = 15
    requires = Requirements(
        devices=frozenset({"cuda"}),
        engines=frozenset({"whisper"}),
        packages=("onnx", "onnxscript", "onnxruntime"),
        conflicts=frozenset({"onnx_encoder"}),
    )

    tolerance: float = 5e-2  # fp16 TensorRT kernels against the float32 PyTorch encoder

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt_encoder needs TensorRT (the tensorrt package), which is not installed"
        import onnxruntime

        if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
            return "tensorrt_encoder needs onnxruntime-gpu with the TensorrtExecutionProvider, which this one lacks"
        return None

    def apply(self, engine: TorchEngine) -> TorchEngine:
        providers = providers_for(engine.device, tensorrt=True, trt_cache=cache_dir() / "tensorrt")
        replace_encoder(engine, providers, self.tolerance)
        return engine
