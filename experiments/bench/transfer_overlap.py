"""How much host-to-device copy time ran at the same time as GPU kernels, read from a torch.profiler trace.

``cuda_streams`` claims copies overlap compute; this measures it: the share of the HtoD memcpy time whose interval
intersects a kernel running on another stream, from the Chrome-trace JSON that ``torch.profiler`` exports.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Overlap:
    copy_us: float  # total HtoD copy time
    overlapped_us: float  # of which a kernel on another stream was running

    @property
    def fraction(self) -> float:
        return self.overlapped_us / self.copy_us if self.copy_us else 0.0


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def copy_compute_overlap(trace: dict[str, Any]) -> Overlap:
    """Overlap of HtoD copies with kernels on other streams in a Chrome trace (``traceEvents`` with ts/dur in us)."""
    copies, kernels = [], []
    for event in trace.get("traceEvents", []):
        if event.get("ph") != "X" or "dur" not in event:
            continue
        category, name = str(event.get("cat", "")).lower(), str(event.get("name", ""))
        stream = (event.get("args") or {}).get("stream", event.get("tid"))
        span = (float(event["ts"]), float(event["ts"]) + float(event["dur"]))
        if category == "gpu_memcpy" and "HtoD" in name:
            copies.append((span, stream))
        elif category == "kernel":
            kernels.append((span, stream))
    copy_us = overlapped = 0.0
    for (start, end), stream in copies:
        copy_us += end - start
        for k_start, k_end in _merge(span for span, k_stream in kernels if k_stream != stream):
            overlapped += max(0.0, min(end, k_end) - max(start, k_start))
    return Overlap(copy_us, overlapped)


def profile_overlap(work: Callable[[], None]) -> Overlap:
    """Run ``work`` (which must synchronise at its end) under the CUDA profiler and measure its copy overlap."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        work()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        return copy_compute_overlap(json.loads(path.read_text()))


def host_transfer_overlap(device: str = "cuda", megabytes: int = 48, matmuls: int = 200) -> dict[str, float]:
    """Overlap fraction of the three ways inputs reach the GPU, each copy issued while earlier kernels still run:
    a plain ``.to`` from pageable memory, ``pinned_transfer`` and ``cuda_streams``. 48 MB is a batch of 32 30-s clips'
    log-mel features; the matmul chain (tens of ms) stands for the previous batch's decode."""
    import torch

    from asrforge.optimizations.host_transfer import HostTransfer

    features = torch.randn(megabytes * 2**20 // 4)
    weights = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    ways: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "pageable": lambda tensor: tensor.to(device),
        "pinned_transfer": HostTransfer(device),
        "cuda_streams": HostTransfer(device, side_stream=True),
    }
    fractions = {}
    for name, move in ways.items():

        def work(move: Callable[[torch.Tensor], torch.Tensor] = move) -> None:
            for _ in range(3):
                for _ in range(matmuls):
                    weights @ weights
                move(features)
            torch.cuda.synchronize(device)

        work()  # pinned buffers allocated and kernels loaded outside the profile
        fractions[name] = round(profile_overlap(work).fraction, 4)
    return fractions


def main(argv: Sequence[str] | None = None) -> int:
    """``asrforge run bench transfer-overlap [--out FILE]``."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(
        prog="asrforge run bench transfer-overlap",
        description="Measure host-to-device copy / compute overlap on this GPU.",
    )
    parser.add_argument("--out", type=Path, help="write the result as JSON here (also printed)")
    args = parser.parse_args(argv)
    result = {"device": torch.cuda.get_device_name(), "overlap_fraction": host_transfer_overlap()}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0
