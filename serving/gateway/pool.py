"""The gateway's workers: which one takes a request (the fewest in flight), when another starts, when one is reclaimed.

Queue depth is counted here, in the gateway, as requests and sessions forwarded and not yet answered: the gateway
sees every one of them, so the count is exact and costs no scrape of the workers' /metrics (which would lag by a
poll interval exactly when a burst arrives).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asrforge.cpu import cpu_quota
from asrforge.serving.gateway.metrics import GatewayMetrics
from asrforge.serving.gateway.worker import WorkerSlot, WorkerState, worker_command, worker_env
from asrforge.serving.settings import GatewaySettings

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(
        self, settings: GatewaySettings, overrides: Sequence[str], metrics: GatewayMetrics, answer_timeout_s: float
    ):
        if settings.workers < 1 or not 0 <= settings.min_workers <= settings.workers:
            raise ValueError(f"gateway needs 1 <= workers and 0 <= min_workers <= workers (got {settings})")
        self.settings = settings
        self.metrics = metrics
        self.idle_timeout_s = settings.idle_timeout_s  # mutable: an operator (or a test) may change it live
        self.threads = settings.threads_per_worker or max(1, cpu_quota() // settings.workers)
        log_dir = Path(settings.log_dir) if settings.log_dir else Path(tempfile.mkdtemp(prefix="asrforge-gateway-"))
        env = worker_env(self.threads)
        self.slots = [
            WorkerSlot(
                index,
                worker_command([*overrides, *_device_override(settings.devices, index)]),
                env,
                log_dir / f"worker-{index}.log",
                metrics,
                settings.start_timeout_s,
                settings.stop_timeout_s,
                answer_timeout_s,
            )
            for index in range(settings.workers)
        ]
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the always-on workers (without waiting for them) and the idle reaper."""
        for slot in self.slots[: self.settings.min_workers]:
            await slot.start()
        self._reaper = asyncio.create_task(self._reap(), name="gateway-idle-reaper")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(*(slot.close() for slot in self.slots))

    def choose(self) -> WorkerSlot:
        """The ready worker with the fewest in flight; when every ready one is busy, a stopped one starts (for the
        requests after this one). With none ready, a starting one, else the first stopped one."""
        ready = [slot for slot in self.slots if slot.state is WorkerState.READY]
        stopped = [slot for slot in self.slots if slot.state is WorkerState.STOPPED]
        if ready:
            best = min(ready, key=lambda slot: slot.in_flight)
            if best.in_flight > 0 and stopped:
                asyncio.create_task(stopped[0].start())
            return best
        starting = [slot for slot in self.slots if slot.state is WorkerState.STARTING]
        if starting:
            return min(starting, key=lambda slot: slot.in_flight)
        return stopped[0] if stopped else min(self.slots, key=lambda slot: slot.in_flight)

    @property
    def ready_count(self) -> int:
        return sum(slot.state is WorkerState.READY for slot in self.slots)

    def describe(self) -> dict[str, Any]:
        return {
            "workers": [slot.describe() for slot in self.slots],
            "idle_timeout_s": self.idle_timeout_s,
            "threads_per_worker": self.threads,
        }

    async def _reap(self) -> None:
        while True:
            timeout = self.idle_timeout_s
            await asyncio.sleep(min(1.0, timeout / 4) if timeout else 1.0)
            if not timeout:
                continue
            for slot in self.slots[self.settings.min_workers :]:
                # Checked and acted on with no await in between: no caller can slip in (callers count themselves
                # in flight before their first await).
                if slot.state is WorkerState.READY and slot.in_flight == 0 and slot.idle_for() >= timeout:
                    log.info("worker %d: idle for %.1f s, stopping it", slot.index, slot.idle_for())
                    asyncio.create_task(slot.stop("idle"))


def _device_override(devices: Sequence[str], index: int) -> list[str]:
    return [f"device={devices[index % len(devices)]}"] if devices else []
