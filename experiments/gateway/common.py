"""Shared pieces of the gateway measurements (experiments/gateway_*.py): the servers under test as subprocesses, the
memory of a process tree over time, lone-request references, and the JSON-lines record file in reports/gateway/.

Every measurement runs the real thing: ``asrforge serve`` (single process, ``--role gateway`` or ``--role ray``) on
a free loopback port, the real ``openai``/``websockets`` clients of the load test (experiments/load/clients.py),
and every answer compared with the lone-request transcript of its file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import device_info
from asrforge.experiments.jsonl import append_jsonl, read_jsonl
from asrforge.experiments.load.clients import Clip, Outcome, Target, requests
from asrforge.experiments.load.server import ServerProcess
from asrforge.paths import eval_data_dir

REPORT_DIR = Path("reports/gateway")
RESULTS = "gateway.jsonl"
LOG_DIR = Path("outputs/gateway")
# What every worker and single server runs here: what `asrforge serve` runs by default (this device's benchmark
# winner in reports/winner.yaml), without the warm-up decode, so a cold start is the model load alone.
MODEL_OVERRIDES = ["serving.warmup=false"]


def gateway_overrides(workers: int, min_workers: int, idle_timeout_s: float | None, threads: int | None) -> list[str]:
    """The command-line tail of ``asrforge serve --role gateway`` with these pool settings."""
    idle = "null" if idle_timeout_s is None else f"{idle_timeout_s:g}"
    return [
        "--role", "gateway", *MODEL_OVERRIDES,
        f"serving.gateway.workers={workers}", f"serving.gateway.min_workers={min_workers}",
        f"serving.gateway.idle_timeout_s={idle}",
        f"serving.gateway.threads_per_worker={'null' if threads is None else threads}",
        f"serving.gateway.log_dir={LOG_DIR / 'workers'}",
    ]  # fmt: skip


def server(name: str, overrides: Sequence[str], console: Console) -> ServerProcess:
    """``with server("gateway-2", gateway_overrides(...), console) as s:`` a ready server at ``s.url``."""
    return ServerProcess("uvicorn", overrides, LOG_DIR / f"{name}.log", console)


def dev_clips(limit: int | None = None) -> list[Clip]:
    manifest = eval_data_dir() / "dev" / "manifest.jsonl"
    entries = read_jsonl(manifest)
    return [Clip.from_path(manifest.parent / entry["audio"]) for entry in entries[:limit]]


def workers(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/gateway/workers", timeout=10).json()["workers"]


async def lone_references(target: Target, clips: Sequence[Clip], kinds: Sequence[str]) -> dict[str, dict[str, str]]:
    """Each clip's text from one lone request of each kind: what every answer under load must equal."""
    lone = requests(speed=0)
    references: dict[str, dict[str, str]] = {}
    for kind in kinds:
        for clip in clips:
            outcome = await lone[kind](target, clip, time.perf_counter() + 300)
            if outcome.status != "ok":
                raise RuntimeError(f"lone {kind} request for {clip.name}: {outcome.status}: {outcome.detail}")
            references.setdefault(kind, {})[clip.name] = outcome.text or ""
    return references


def correctness(outcomes: Sequence[Outcome], references: dict[str, dict[str, str]]) -> dict[str, int]:
    answered = [o for o in outcomes if o.status == "ok"]
    wrong = [o for o in answered if o.text != references[o.kind][o.clip]]
    return {"answered": len(answered), "matching_lone_request": len(answered) - len(wrong), "mismatched": len(wrong)}


class TreeMemory:
    """RSS of a process and of its children (the workers), sampled every ``interval_s`` on a thread."""

    def __init__(self, pid: int, interval_s: float = 0.25):
        self.root = psutil.Process(pid)
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self.began = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> dict[str, Any]:
        gateway_mb = self.root.memory_info().rss / 2**20
        children = []
        for child in self.root.children(recursive=True):
            try:
                children.append(child.memory_info().rss / 2**20)
            except psutil.Error:
                continue
        return {
            "t_s": round(time.perf_counter() - self.began, 3),
            "gateway_mb": round(gateway_mb, 1),
            "workers_mb": round(sum(children), 1),
            "worker_processes": len(children),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.sample())
            except psutil.Error:
                return
            self._stop.wait(self.interval_s)


def append_record(record: dict[str, Any], report_dir: Path = REPORT_DIR) -> Path:
    """Add the run's context (device, commit, time) and append the record to ``gateway.jsonl``."""
    record = {
        **record,
        "device": device_info("cpu"),
        "commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return append_jsonl(report_dir / RESULTS, [record])


def read_records(report_dir: Path = REPORT_DIR) -> list[dict[str, Any]]:
    return read_jsonl(report_dir / RESULTS, missing_ok=True)
