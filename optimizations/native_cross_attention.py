"""Native cross-attention: the lean Whisper decoder's cross-attention products in a small C kernel (cross_attention.c).

A beam-search step attends with 5 query rows (the beams) over the encoder's 1500 frames in every decoder layer.
torch's CPU paths for that shape (SDPA, matmul, bmm, linear: MKL or oneDNN sgemm underneath) run it at ~10 GFLOP/s,
so on one thread tiny.en's four layers spent ~4 ms of a ~10-ms step there; the kernel reads each layer's keys and
values once, in order, from a layout written once per window (16-frame blocks of keys), ~7x faster per layer (see
the C file). Softmax stays torch's.

Same arithmetic in another summation order: outputs agree with SDPA's to ~1e-6 of their size, and on float32 weights
the transcripts are the same (all 27 dev files at the fallback policy; tested on three). With ``int8_dynamic`` they
are not always: each Linear quantizes its input with a dynamic scale, and an activation that sits on a rounding
boundary moves by a whole int8 step for a 1e-6 change, which at a near-tie of the beam search picks another token
(8 of the 27 dev files at beam 5, mostly punctuation; WER within noise either way). So with int8 it is a row the
bench's accuracy rule judges like any lossy one (reports/cpu/README.md).

CPU, float32 and the lean engine only (the transformers engine's attention is not ours to replace); needs a C
compiler, which builds the kernel once per machine (optimizations/native_build.py). The lean engine's companion
(word timestamps, streaming) runs without it: it changes how the cross-attention is computed, not what.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from asrforge.engines.base import TorchEngine
from asrforge.errors import ConfigError
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.optimizations.native_build import compiler_refusal, load_library

SOURCE = Path(__file__).with_name("cross_attention.c")
BLOCK = 16  # frames per key block: one 16-float vector (cross_attention.c)
HEAD_DIM = 64  # the kernel's value width: every Whisper size's


@register
@dataclass(frozen=True)
class NativeCrossAttention(Plugin):
    name = "native_cross_attention"
    order = 30  # after the weights change (pruned heads, int8): it reads whatever heads the layers keep
    kernel_only = True
    requires = Requirements(
        engines=frozenset({"whisper_lean"}), devices=frozenset({"cpu"}), dtypes=frozenset({"float32"})
    )

    def refusal(self, target: Target) -> str | None:
        return super().refusal(target) or compiler_refusal(self.name)

    def apply(self, engine: TorchEngine) -> TorchEngine:
        layers = engine.model.model.decoder.layers
        widths = {layer.encoder_attn.head_dim for layer in layers}
        if widths != {HEAD_DIM}:
            raise ConfigError(
                f"native_cross_attention: the kernel takes {HEAD_DIM}-wide heads; this model's are {widths}"
            )
        kernel = NativeKernel(load_library(SOURCE))
        for layer in layers:
            layer.cross_kernel = kernel
        return engine


class NativeKernel:
    """A decoder layer's ``cross_kernel`` (engines/whisper_lean_model.py) backed by cross_attention.c."""

    def __init__(self, library: ctypes.CDLL):
        pointer, count = ctypes.c_void_p, ctypes.c_int
        self._scores = library.cross_scores
        self._scores.argtypes = [pointer, pointer, pointer, count, count, count, count]
        self._scores.restype = None
        self._weighted = library.cross_weighted
        self._weighted.argtypes = [pointer, pointer, pointer, count, count, count]
        self._weighted.restype = None

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """keys, values (clips, heads, frames, dim) -> keys in 16-frame blocks (clips, heads, blocks, dim, 16), zero
        padded to whole blocks, and values contiguous as they are."""
        frames = keys.shape[-2]
        padded = F.pad(keys, (0, 0, 0, -frames % BLOCK))
        blocked = padded.unflatten(-2, (-1, BLOCK)).transpose(-1, -2).contiguous()
        return blocked, values.contiguous()

    def __call__(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """q (clips, heads, rows, dim) -> (clips, heads, rows, dim)"""
        q = q.contiguous()
        clips, heads, rows, dim = q.shape
        frames = values.shape[-2]
        groups = clips * heads
        scores = q.new_empty(clips, heads, rows, frames)
        self._scores(q.data_ptr(), keys.data_ptr(), scores.data_ptr(), groups, rows, frames, dim)
        weights = scores.softmax(-1)
        out = q.new_empty(clips, heads, rows, dim)
        self._weighted(weights.data_ptr(), values.data_ptr(), out.data_ptr(), groups, rows, frames)
        return out
