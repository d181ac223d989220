"""W8A8 int8 with SmoothQuant activation smoothing, calibrated on real speech; encoder and decoder switched separately.

SmoothQuant moves activation outliers into the weights: each input channel j of a Linear is divided by
s_j = max|X_j|^alpha / max|W_j|^(1-alpha) and its weight column multiplied by it, so int8 activation quantization
loses less. The per-channel maxima come from running the engine on calibration audio (by default the shortest,
median and longest clips of the dev set's tuning part, so the test part the report scores never calibrates).

Two back-ends, chosen per device as ``int8_dynamic`` chooses them: on CUDA torchao's ``SmoothQuantConfig`` over
``Int8DynamicActivationInt8WeightConfig`` (int8 tensor-core GEMMs); on CPU the smoothing of ``smoothing.py`` in front
of fbgemm's dynamic int8 ``Linear``, because torchao's eager CPU int8 is slower than fp32 (seen: 2x on tiny.en) and
fbgemm's one-scale-per-tensor activations are exactly what smoothing helps.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asrforge.audio import load_audio
from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.optimizations.smoothing import ChannelRange, linears_to_smooth, smooth
from asrforge.optimizations.warmup import representative_clips
from asrforge.paths import eval_data_dir

TARGETS = ("encoder", "decoder")


def is_linear(module: torch.nn.Module, fqn: str = "") -> bool:
    return isinstance(module, torch.nn.Linear)


@register
@dataclass(frozen=True)
class SmoothQuantInt8(Plugin):
    name = "smoothquant_int8"
    order = 20
    requires = Requirements(dtypes=frozenset({"float32", "bfloat16", "float16"}), conflicts=frozenset({"int8_dynamic"}))

    targets: tuple[str, ...] = TARGETS
    backend: str = "auto"  # "auto" (fbgemm on CPU, torchao on CUDA) | "torchao" | "fbgemm"
    alpha: float = 0.5  # migration strength: 0 = plain W8A8, 1 = all of the activation range moved to the weights
    calibration_audio: Sequence[str] = ()  # files; empty = shortest, median, longest tuning-part dev clips

    def calibration_paths(self) -> list[Path]:
        if self.calibration_audio:
            return [Path(path) for path in self.calibration_audio]
        return representative_clips(eval_data_dir() / "dev" / "manifest.jsonl")

    def refusal(self, target: Target) -> str | None:
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown:
            return f"smoothquant_int8: unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})"
        if not self.calibration_audio and not (eval_data_dir() / "dev" / "manifest.jsonl").is_file():
            return f"smoothquant_int8 calibrates on speech: no dev set at {eval_data_dir()} (or set calibration_audio)"
        reason = super().refusal(target)
        if reason:
            return reason
        backend = self.resolved_backend(target.device_type)
        if backend == "fbgemm" and (target.device_type != "cpu" or target.dtype != "float32"):
            return "smoothquant_int8 backend fbgemm runs float32 models on CPU only"
        if backend == "torchao":
            return Requirements(packages=("torchao",)).refusal(self.name, target)
        if backend != "fbgemm":
            return f"smoothquant_int8: unknown backend {backend!r} (auto, torchao, fbgemm)"
        return None

    def resolved_backend(self, device_type: str) -> str:
        if self.backend != "auto":
            return self.backend
        return "fbgemm" if device_type == "cpu" else "torchao"

    def apply(self, engine: TorchEngine) -> TorchEngine:
        modules = [engine.encoder_module()] * ("encoder" in self.targets) + [engine.decoder_module()] * (
            "decoder" in self.targets
        )
        clips = [load_audio(path) for path in self.calibration_paths()]
        backend = self.resolved_backend(torch.device(engine.device).type)
        if backend == "fbgemm":
            linears = _smooth_fbgemm(engine, modules, clips, self.alpha)
            engine.batch_variance = "smoothquant_int8 (fbgemm) quantizes activations with one scale per batch"
        else:
            linears = _smooth_torchao(engine, modules, clips, self.alpha)
        engine.stats[self.name] = {"backend": backend, "smoothed_linears": linears, "calibration_clips": len(clips)}
        return engine


def _calibrate(engine: TorchEngine, clips: list[np.ndarray]) -> None:
    for clip in clips:
        engine.transcribe([clip])


def _smooth_fbgemm(engine: TorchEngine, modules: list[torch.nn.Module], clips: list[np.ndarray], alpha: float) -> int:
    found = linears_to_smooth(modules)
    ranges = [ChannelRange(linear) for _, _, linear in found]
    try:
        _calibrate(engine, clips)
    finally:
        for observed in ranges:
            observed.handle.remove()
    for (parent, name, linear), observed in zip(found, ranges, strict=True):
        smooth(parent, name, linear, observed.amax, alpha)
    with warnings.catch_warnings():
        # torch marks torch.ao.quantization deprecated in favour of torchao, whose CPU path is the slow one here.
        warnings.simplefilter("ignore")
        quantization = torch.ao.quantization
        for module in modules:
            quantization.quantize_dynamic(
                module, {torch.nn.Linear: quantization.per_channel_dynamic_qconfig}, inplace=True
            )
    return len(found)


def _smooth_torchao(engine: TorchEngine, modules: list[torch.nn.Module], clips: list[np.ndarray], alpha: float) -> int:
    from torchao.prototype.smoothquant import SmoothQuantConfig
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    from torchao.quantization.quantize_.common.quantization_step import QuantizationStep

    base = Int8DynamicActivationInt8WeightConfig()
    for module in modules:
        quantize_(module, SmoothQuantConfig(base, step=QuantizationStep.PREPARE, alpha=alpha), is_linear)
    _calibrate(engine, clips)  # observers record each Linear's per-channel input maxima
    for module in modules:
        quantize_(module, SmoothQuantConfig(base, step=QuantizationStep.CONVERT, alpha=alpha), is_linear)
    return sum(type(child) is torch.nn.Linear for module in modules for child in module.modules())
