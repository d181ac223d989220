"""The bandwidth floor of a decoder step: the time it takes just to read the decoder's weights once.

At small batch a decoder step is memory-bound: every weight is read once per token whatever the batch, so no
kernel can beat ``weight bytes / memory bandwidth``. The bandwidth is measured in the same process as the decoder
(a device-to-device copy, counting bytes read and written, the way a copy benchmark reports it), so the ratio
``measured ms/token / floor ms/token`` compares like with like on any device; 1.0 is the hardware limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from asrforge.engines.base import TorchEngine
from asrforge.timing import synchronize

# Large enough to dwarf launch and timer overheads and several times any cache (60 MB of L2 on an H200).
COPY_BYTES = {"cuda": 1 << 30, "cpu": 1 << 25}
COPIES = 10


@dataclass(frozen=True)
class Floor:
    weight_bytes: int  # what one decoder step reads: every layer's weights and the output head, once
    copy_bytes_per_s: float

    @property
    def ms_per_token(self) -> float:
        return 1000.0 * self.weight_bytes / self.copy_bytes_per_s

    def ratio(self, ms_per_token: float) -> float:
        return ms_per_token / self.ms_per_token

    def as_record(self) -> dict[str, float]:
        return {
            "weight_mb": round(self.weight_bytes / 2**20, 2),
            "copy_gb_s": round(self.copy_bytes_per_s / 1e9, 2),
            "ms_per_token": round(self.ms_per_token, 5),
        }


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor occupies; for a wrapper subclass (torchao's FP8 and int8 weights), its data plus its scales."""
    if is_traceable_wrapper_subclass(tensor):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


def decoder_weight_bytes(engine: TorchEngine) -> int:
    """Weight bytes one decoder step reads: the decoder's parameters without the input embedding table (a step
    reads one row of it), plus the output head's (which is that table where the two are tied: counted once)."""
    embedding = engine.model.get_input_embeddings().weight
    read = {id(p): p for p in engine.decoder_module().parameters() if p is not embedding}
    read.update({id(p): p for p in engine.model.get_output_embeddings().parameters()})
    return sum(tensor_bytes(p) for p in read.values())


def copy_bandwidth(device: str, nbytes: int | None = None, copies: int = COPIES) -> float:
    """Bytes per second a device-to-device copy moves on ``device`` (read + written), best of three timings."""
    kind = torch.device(device).type
    nbytes = nbytes or COPY_BYTES.get(kind, COPY_BYTES["cuda"])
    source = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    target.copy_(source)  # first touch: page faults and allocator growth stay out of the timing
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        started = time.perf_counter()
        for _ in range(copies):
            target.copy_(source)
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    del source, target
    if kind == "cuda":
        torch.cuda.empty_cache()
    return 2 * nbytes * copies / best


def floor_fields(engine: TorchEngine, ms_per_token: float | None, copy_bytes_per_s: float) -> dict[str, object]:
    """The record's ``decoder_ms_per_token``, ``floor`` and ``floor_ratio`` for a row's measured decoder."""
    floor = Floor(weight_bytes=decoder_weight_bytes(engine), copy_bytes_per_s=copy_bytes_per_s)
    return {
        "decoder_ms_per_token": None if ms_per_token is None else round(ms_per_token, 5),
        "floor": floor.as_record(),
        "floor_ratio": None if ms_per_token is None else round(floor.ratio(ms_per_token), 4),
    }
