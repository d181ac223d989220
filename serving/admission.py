"""What the scheduler decides before and between decodes: how fast the engine drains audio (measured by the
scheduler itself), whether a request would wait longer than ``max_wait_s`` (then 429 with a Retry-After from the
same estimate), which priority class goes next so that none starves, and how much engine time the steps that first
partials wait on may take out of turn (``Allowance``).

The class order is start-time fair queuing over three classes (realtime, stream, batch) with the configured
weights: each class carries a virtual time that grows by the engine seconds it used divided by its weight; the
class with the smallest virtual time goes next, ties going to the more urgent class. A class that was idle
restarts at the current virtual time (no credit saved while idle), so realtime still goes first whenever it is
within its share, and under a flood of realtime work stream and batch still get ``weight / sum(weights)`` of the
engine. A library scheduler (e.g. an asyncio priority queue) has no notion of shares, so this is ours: ~40 lines.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from asrforge.errors import ConfigError


class DecodeSpeed:
    """Audio seconds the engine drains per second of its time: an EWMA over the scheduler's decodes. Time spent on
    other model work (realtime stream steps) since the last decode is counted in, so the figure is the speed the
    queue actually drains at."""

    def __init__(self, smoothing: float = 0.2):
        self.smoothing = smoothing
        self.audio_per_s: float | None = None  # None until the first decode is measured
        self._other_s = 0.0

    def other_work(self, seconds: float) -> None:
        self._other_s += seconds

    def observe(self, audio_s: float, compute_s: float) -> None:
        spent, self._other_s = compute_s + self._other_s, 0.0
        if audio_s <= 0 or spent <= 0:
            return
        sample = audio_s / spent
        previous = self.audio_per_s
        self.audio_per_s = sample if previous is None else (1 - self.smoothing) * previous + self.smoothing * sample

    def seconds_for(self, audio_s: float) -> float | None:
        """Engine seconds to decode ``audio_s`` at the measured speed (None before any measurement)."""
        return None if not self.audio_per_s else audio_s / self.audio_per_s


class WaitCalibration:
    """How far the estimates fall short of the waits the admitted requests then had: a factor applied to new ones.

    The share bound assumes a request's audio costs the measured mean speed; a chunk whose temperature fallback
    re-decodes it several times, or a run of long chunks, costs more, and the requests behind it wait longer than
    estimated (measured under the 64-client load: admitted waits far beyond ``max_wait_s``). The factor is the
    ``quantile`` of actual / estimated wait over the last ``window`` admitted requests, so that most admitted requests
    finish within ``max_wait_s`` whatever the estimate's bias; 1 until ``min_samples`` are in. Kept within
    [``floor``, ``ceiling``]: estimates that run long (realtime counted both in the speed and in the share) let in
    more, but never more than twice the model's figure.
    """

    def __init__(
        self, window: int = 64, quantile: float = 0.9, min_samples: int = 8, floor: float = 0.5, ceiling: float = 20
    ):
        self._ratios: deque[float] = deque(maxlen=window)
        self.quantile, self.min_samples, self.floor, self.ceiling = quantile, min_samples, floor, ceiling

    def observe(self, estimated_s: float, actual_s: float) -> None:
        # An estimate under a second is mostly the decode itself; the ratio of two tiny figures says nothing.
        self._ratios.append(max(actual_s, 0.0) / max(estimated_s, 1.0))

    @property
    def factor(self) -> float:
        if len(self._ratios) < self.min_samples:
            return 1.0
        ordered = sorted(self._ratios)
        value = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
        return min(self.ceiling, max(self.floor, value))


@dataclass(frozen=True)
class WaitEstimate:
    expected_s: float  # from now until the request's last chunk is decoded, if it were admitted (calibrated)
    max_wait_s: float
    model_s: float = 0.0  # the share bound before calibration: what WaitCalibration compares the actual wait with

    @property
    def admitted(self) -> bool:
        return self.expected_s <= self.max_wait_s

    @property
    def retry_after_s(self) -> int:
        """When the backlog ahead will have drained enough for this request to fit within ``max_wait_s`` (if
        nothing else arrives); at least 1 s."""
        return max(1, math.ceil(self.expected_s - self.max_wait_s))


class Allowance:
    """A token bucket of engine seconds: work it admits may take up to ``share`` of the engine over time, plus a
    ``burst`` at once. Spending may overdraw it; nothing more is admitted until it has refilled."""

    def __init__(self, share: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if not 0 <= share <= 1 or burst < 0:
            raise ConfigError(f"an allowance needs a share within [0, 1] and a burst >= 0; got {share}, {burst}")
        self.share, self.burst, self._clock = share, burst, clock
        self._seconds, self._at = burst, clock()

    @property
    def available(self) -> bool:
        return self._refilled() > 0

    def spend(self, seconds: float) -> None:
        self._seconds = self._refilled() - seconds

    def _refilled(self) -> float:
        now = self._clock()
        self._seconds, self._at = min(self.burst, self._seconds + (now - self._at) * self.share), now
        return self._seconds


class FairShare:
    """Start-time fair queuing over priority classes 0..n-1 (0 most urgent)."""

    def __init__(self, weights: Sequence[float], classes: int):
        if len(weights) != classes or any(w <= 0 for w in weights):
            raise ConfigError(f"scheduler.class_weights needs {classes} positive weights; got {list(weights)}")
        self.weights = list(weights)
        self.virtual = [0.0] * len(weights)
        self.now = 0.0  # the virtual time of the class served last

    def activate(self, cls: int) -> None:
        """``cls`` had nothing queued and now has: it starts from the present, not from its idle past."""
        self.virtual[cls] = max(self.virtual[cls], self.now)

    def pick(self, waiting: Sequence[int]) -> int:
        """The class to serve next among those with queued work."""
        cls = min(waiting, key=lambda c: (self.virtual[c], c))
        self.now = self.virtual[cls]
        return cls

    def share(self, cls: int, active: Iterable[int]) -> float:
        """The engine share ``cls`` is guaranteed while the ``active`` classes (and it) all have work."""
        return self.weights[cls] / sum(self.weights[c] for c in {*active, cls})

    def charge(self, cls: int, engine_s: float) -> None:
        self.virtual[cls] += engine_s / self.weights[cls]
