"""SmoothQuant's activation smoothing for PyTorch's fbgemm int8 kernels (the CPU form of ``smoothquant_int8``).

fbgemm's dynamic int8 ``Linear`` quantizes each input with ONE scale for the whole tensor, so a few input channels
with large activations (LayerNorm outputs have them) squeeze every other channel into a few int8 steps. Smoothing
divides input channel j by s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha) and multiplies weight column j by it: the
product is unchanged in exact arithmetic, the activation range is flatter. The division is one elementwise multiply
in front of the quantized matmul (``SmoothedLinear``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# Linears that read an attention output or an MLP activation, not a normalised input. SmoothQuant smooths only the
# Linears after a norm (q/k/v, fc1, gate/up), where the outlier channels are; scaling fc2's weight columns by its
# post-GELU ranges made tiny.en loop (seen on jfk.flac). These are quantized unsmoothed.
UNSMOOTHED = frozenset({"out_proj", "o_proj", "fc2", "down_proj"})
# Scales are clamped away from zero: an input channel that never fired during calibration keeps scale 1 instead of
# blowing up its weight column.
MIN_SCALE = 1e-5


class ChannelRange:
    """Records max |x| per input channel of a Linear over every call while attached (the calibration pass)."""

    def __init__(self, linear: torch.nn.Linear):
        self.amax = torch.zeros(linear.in_features, device=linear.weight.device)
        self.handle = linear.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple) -> None:
        x = args[0].detach().float()
        self.amax = torch.maximum(self.amax, x.abs().reshape(-1, x.shape[-1]).amax(dim=0))


class SmoothedLinear(torch.nn.Module):
    """``linear(x / s)`` with the weight columns already multiplied by ``s``."""

    def __init__(self, linear: torch.nn.Linear, inverse_scale: torch.Tensor):
        super().__init__()
        self.linear = linear
        self.register_buffer("inverse_scale", inverse_scale.to(linear.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inverse_scale)


def smoothing_scale(linear: torch.nn.Linear, amax: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant's per-input-channel scale s for ``linear`` given the calibrated activation maxima."""
    wmax = linear.weight.detach().abs().float().amax(dim=0).clamp(min=MIN_SCALE)
    scale = amax.clamp(min=MIN_SCALE).pow(alpha) / wmax.pow(1 - alpha)
    return torch.where(amax > 0, scale, torch.ones_like(scale)).clamp(min=MIN_SCALE)


def linears_to_smooth(modules: Iterable[torch.nn.Module]) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    """(parent, attribute, Linear) for every Linear inside ``modules`` that reads a normalised input."""
    found = []
    for module in modules:
        for parent in module.modules():
            for name, child in parent.named_children():
                if type(child) is torch.nn.Linear and name not in UNSMOOTHED:
                    found.append((parent, name, child))
    return found


def smooth(parent: torch.nn.Module, name: str, linear: torch.nn.Linear, amax: torch.Tensor, alpha: float) -> None:
    """Replace ``parent.<name>`` by its smoothed equivalent (same output up to float rounding)."""
    scale = smoothing_scale(linear, amax, alpha)
    with torch.no_grad():
        linear.weight.mul_(scale.to(linear.weight.dtype))
    setattr(parent, name, SmoothedLinear(linear, 1.0 / scale))
