"""One worker slot of the gateway: a child process running the ordinary single-process server on its own socket.

The gateway owns each slot's listening socket and hands it to the child (``--fd``), so a restarted worker serves the
same address and no port can be taken by someone else in between. A slot is started on demand, stopped when idle
(its RAM goes back to the system with the process), and restarted at once when it dies while serving. Callers
count themselves in flight before they wait for a start, so the idle reaper never stops a worker someone is about
to use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import psutil

from asrforge.serving.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

READY_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1


class WorkerState(str, Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


class WorkerUnavailable(Exception):
    """The worker a request was given to cannot answer it (it died, or did not start); the caller may retry."""


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the gateway dies, so no orphaned worker keeps a model in RAM."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerSlot:
    def __init__(
        self,
        index: int,
        command: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        metrics: GatewayMetrics,
        start_timeout_s: float,
        stop_timeout_s: float,
        answer_timeout_s: float,
    ):
        self.index = index
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.command = [*command, "--fd", str(self.sock.fileno())]
        self.env = env
        self.log_path = log_path
        self.metrics = metrics
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.state = WorkerState.STOPPED
        self.process: asyncio.subprocess.Process | None = None
        self.client: httpx.AsyncClient | None = None
        self.in_flight = 0
        self.last_used = time.monotonic()
        self.restarts = 0  # unexpected exits of a ready worker
        self.cold_starts_s: list[float] = []
        self.last_exit: str | None = None
        self._started: asyncio.Future | None = None  # the current start's outcome
        self._stopped = asyncio.Event()
        self._stopped.set()
        self._stopping_on_purpose = False

    # ---- what callers use -------------------------------------------------------------------------------------
    async def acquire(self) -> httpx.AsyncClient:
        """Count the caller in flight, start the worker if needed and wait until it is ready; its HTTP client."""
        self.in_flight += 1
        self._publish()
        try:
            client = await self._ensure_ready()
        except BaseException:
            self.release()
            raise
        self.last_used = time.monotonic()
        return client

    def release(self) -> None:
        self.in_flight -= 1
        self.last_used = time.monotonic()
        self._publish()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_used if self.in_flight == 0 else 0.0

    def unavailable(self, why: str) -> WorkerUnavailable:
        self.metrics.unavailable.inc()
        return WorkerUnavailable(f"worker {self.index} {why}")

    # ---- lifecycle --------------------------------------------------------------------------------------------
    async def _ensure_ready(self) -> httpx.AsyncClient:
        while True:
            if self.state is WorkerState.READY and self.client is not None:
                return self.client
            if self.state is WorkerState.STOPPING:
                await self._stopped.wait()
                continue
            if self.state is WorkerState.STOPPED:
                await self.start()
            started = self._started
            if started is None:
                continue
            try:
                await asyncio.shield(started)
            except WorkerUnavailable:
                raise
            except Exception as error:  # the start failed for a reason of its own: the caller may retry
                raise self.unavailable(f"could not start: {error}") from error

    async def start(self) -> None:
        """Spawn the worker (if stopped); readiness is awaited through ``_started``."""
        if self.state is not WorkerState.STOPPED:
            return
        loop = asyncio.get_running_loop()
        self.state = WorkerState.STARTING
        self._stopped.clear()
        self._stopping_on_purpose = False
        self._started = loop.create_future()
        self._publish()
        began = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(self.sock.fileno(),),
                preexec_fn=_die_with_parent,
            )
        log.info("worker %d: started pid %d on %s", self.index, self.process.pid, self.url)
        asyncio.create_task(self._watch(self.process), name=f"worker-{self.index}-watch")
        asyncio.create_task(self._wait_ready(self.process, began), name=f"worker-{self.index}-ready")

    async def stop(self, reason: str = "idle") -> None:
        """Stop the worker gracefully (SIGTERM, then SIGKILL after the grace); returns once it has exited."""
        process = self.process
        if process is None or self.state in (WorkerState.STOPPED, WorkerState.STOPPING):
            await self._stopped.wait()
            return
        self.state = WorkerState.STOPPING
        self._stopping_on_purpose = True
        self.last_exit = reason
        self._publish()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._stopped.wait(), self.stop_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await self._stopped.wait()

    async def close(self) -> None:
        """Stop the worker and give the socket up (the gateway is shutting down)."""
        await self.stop("shutdown")
        self.sock.close()

    async def _wait_ready(self, process: asyncio.subprocess.Process, began: float) -> None:
        # A worker that stops answering (hung, not dead) must not hold its callers forever either.
        client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(self.answer_timeout_s, connect=10),
            # No cap of httpx's own (100): the worker's queue limit answers 429 itself; a cap here would make
            # caller 101 wait in the gateway, invisible to the worker's Retry-After.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        deadline = time.perf_counter() + self.start_timeout_s
        reason: str | None = None
        while reason is None:
            if process.returncode is not None or self.process is not process:
                reason = f"exited with {process.returncode} while loading (log: {self.log_path})"
                break
            try:
                response = await client.get("/ready", timeout=5)
                if response.status_code == 200:
                    break
                if response.json().get("status") == "failed":
                    reason = f"failed to load: {response.json().get('reason')}"
            except (httpx.HTTPError, ValueError):
                pass
            if time.perf_counter() > deadline:
                reason = f"not ready after {self.start_timeout_s:g} s (log: {self.log_path})"
            else:
                await asyncio.sleep(READY_POLL_S)
        started = self._started
        if reason is not None:
            await client.aclose()
            if started is not None and not started.done():
                started.set_exception(self.unavailable(reason))
                started.exception()  # retrieved: a start nobody waits for must not log "never retrieved"
            if process.returncode is None:
                self._stopping_on_purpose = True
                process.kill()
            return
        cold_start_s = time.perf_counter() - began
        self.cold_starts_s.append(cold_start_s)
        self.metrics.cold_start.observe(cold_start_s)
        self.client = client
        self.state = WorkerState.READY
        self.last_used = time.monotonic()
        self._publish()
        log.info("worker %d: ready after %.1f s", self.index, cold_start_s)
        if started is not None and not started.done():
            started.set_result(None)

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        if self.process is not process:
            return
        crashed = not self._stopping_on_purpose and self.state is WorkerState.READY
        client, self.client, self.process = self.client, None, None
        self.state = WorkerState.STOPPED
        self._stopped.set()
        if client is not None:
            # In-flight requests on this client already see their connection reset by the kernel.
            asyncio.create_task(client.aclose())
        started = self._started
        if started is not None and not started.done():
            started.set_exception(self.unavailable(f"exited with {code} before it was ready (log: {self.log_path})"))
            started.exception()
        self.metrics.exits.labels("crash" if crashed else (self.last_exit or "stop")).inc()
        self._publish()
        if crashed:
            self.restarts += 1
            self.last_exit = f"crashed (exit {code})"
            log.warning("worker %d: exited with %s while serving; restarting", self.index, code)
            await self.start()
        else:
            log.info("worker %d: stopped (%s)", self.index, self.last_exit)

    # ---- observation ------------------------------------------------------------------------------------------
    def rss_mb(self) -> float | None:
        if self.process is None:
            return None
        try:
            process = psutil.Process(self.process.pid)
            return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20
        except psutil.Error:
            return None

    def describe(self) -> dict[str, Any]:
        rss = self.rss_mb()
        return {
            "index": self.index,
            "state": self.state.value,
            "pid": self.process.pid if self.process is not None else None,
            "url": self.url,
            "in_flight": self.in_flight,
            "idle_s": round(self.idle_for(), 3),
            "rss_mb": round(rss, 1) if rss is not None else None,
            "restarts": self.restarts,
            "cold_starts_s": [round(s, 3) for s in self.cold_starts_s],
            "last_exit": self.last_exit,
            "log": str(self.log_path),
        }

    def _publish(self) -> None:
        self.metrics.in_flight.labels(str(self.index)).set(self.in_flight)
        self.metrics.ready.labels(str(self.index)).set(1 if self.state is WorkerState.READY else 0)


def worker_command(overrides: Sequence[str]) -> list[str]:
    """The child's command line: the ordinary server in its worker role, with the serve config's overrides."""
    return [sys.executable, "-m", "asrforge.cli", "serve", "--role", "worker", *overrides]


def worker_env(threads: int) -> dict[str, str]:
    """The child's environment: torch/OpenMP threads sized for its share of the CPUs."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env
