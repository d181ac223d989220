"""Wall-clock stage timing that is honest on GPUs (it waits for queued kernels before reading the clock)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def synchronize(device: str | torch.device) -> None:
    """Block until queued work on ``device`` is done, so a clock read measures it; a no-op on CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class StageTimer:
    """Accumulates seconds per named stage; ``with timer.stage("encode"): ...``."""

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def report(self, total_s: float) -> dict[str, float]:
        """The stage times plus ``total_s``, rounded to microseconds, as ``Transcript.timings`` holds them."""
        out = {name: round(seconds, 6) for name, seconds in self.seconds.items()}
        out["total_s"] = round(total_s, 6)
        return out
