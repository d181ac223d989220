"""The server under load: ``asrforge serve`` as a subprocess on a free loopback port (started, awaited until
/ready, stopped, its log scanned for errors), its /metrics counters, and how much CPU other processes took meanwhile."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

from asrforge.experiments.bench.run_row import cpu_sample

READY_TIMEOUT_S = 600
STOP_TIMEOUT_S = 30
# A server-side failure in the log: a logged error or traceback, or a 5xx in an access line (not /ready's 503
# while the model loads, which is what /ready is for).
_ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)|Exception in ASGI")
_SERVER_ERROR_ACCESS = re.compile(r'" 5\d\d\b')
_EXCERPT_LINES = 30
_METRICS = {
    "asrforge_batch_size_sum": "batch_sum",
    "asrforge_batch_size_count": "batch_count",
    "asrforge_inference_seconds_sum": "inference_sum",
    "asrforge_inference_seconds_count": "inference_count",
    "asrforge_rejected_total": "rejected",
    "asrforge_model_call_seconds_total": "call_sum",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``with ServerProcess("granian", overrides, log) as server:`` a ready server at ``server.url``."""

    def __init__(self, server: str, overrides: Sequence[str], log_path: Path, console: Console):
        self.server = server
        self.overrides = list(overrides)
        self.log_path = log_path
        self.console = console
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_s: float | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w", encoding="utf-8")
        command = [sys.executable, "-m", "asrforge.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--server", self.server, *self.overrides]
        # Its own session: granian's worker is a child of the server, and both must go when we stop it.
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self._process.pid
        try:
            self._wait_ready()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _wait_ready(self) -> None:
        began = time.perf_counter()
        with self.console.status(f"starting {self.server} on {self.url} (log: {self.log_path})"):
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(
                        f"{self.server} exited with {self._process.returncode} before it was ready:\n{self._tail()}"
                    )
                try:
                    response = httpx.get(self.url + "/ready", timeout=5)
                    if response.status_code == 200:
                        break
                    if response.json().get("status") == "failed":
                        raise RuntimeError(f"{self.server} failed to load: {response.json().get('reason')}")
                except (httpx.HTTPError, ValueError):
                    pass
                if time.perf_counter() - began > READY_TIMEOUT_S:
                    raise RuntimeError(f"{self.server} not ready after {READY_TIMEOUT_S} s:\n{self._tail()}")
                time.sleep(0.5)
        self.startup_s = round(time.perf_counter() - began, 1)
        self.console.print(f"{self.server} ready on {self.url} after {self.startup_s} s")

    def _stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # a graceful shutdown, as Ctrl-C gives
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self._process.wait()
        self.exit_code = self._process.returncode
        self._log.close()

    def _tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def info(self) -> dict[str, Any]:
        """What the record keeps of the server: name, start-up time, exit code, and the errors in its log."""
        count, excerpt = scan_log(self.log_path.read_text(encoding="utf-8", errors="replace"))
        return {
            "name": self.server,
            "startup_s": self.startup_s,
            "exit_code": self.exit_code,
            "log": str(self.log_path),
            "log_errors": count,
            "log_excerpt": excerpt,
        }


def scan_log(text: str) -> tuple[int, list[str]]:
    """How many lines report a server-side failure, and the log from the first of them on (a few dozen lines)."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if "/ready" not in line and _is_error(line)]
    return len(hits), (lines[hits[0] : hits[0] + _EXCERPT_LINES] if hits else [])


def _is_error(line: str) -> bool:
    return bool(_ERROR_LINE.search(line) or _SERVER_ERROR_ACCESS.search(line))


async def scrape_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """The server's unlabelled counters from /metrics (batches, engine seconds, 429s)."""
    response = await client.get("/metrics")
    response.raise_for_status()
    values = dict.fromkeys(_METRICS.values(), 0.0)
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name in _METRICS:
            values[_METRICS[name]] = float(value)
    return values


class CpuMeter:
    """The share of the machine's CPU that processes other than this one and the server (``pid`` and its
    children) used between construction and ``stop()``: a load test competing with another job is not the
    server's measurement. ``None`` where it cannot tell (no /proc, or a server we did not start)."""

    def __init__(self, pid: int | None):
        self.pid = pid
        self._before = self._sample()
        self.share: float | None = None

    def _sample(self) -> tuple[float, float, int, float, float] | None:
        machine = cpu_sample()
        if machine is None or self.pid is None:
            return None
        return (*machine, _tree_cpu_s(self.pid))

    def stop(self) -> float | None:
        after = self._sample()
        before = self._before
        if before is None or after is None or after[0] <= before[0]:
            return None
        foreign = (after[1] - before[1]) - (after[3] - before[3]) - (after[4] - before[4])
        self.share = round(min(1.0, max(0.0, foreign / ((after[0] - before[0]) * after[2]))), 3)
        return self.share


def _tree_cpu_s(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0
