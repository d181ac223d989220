"""RSS of the gateway and its workers before, during and after a burst, and how long the idle workers take to give
their memory back::

    asrforge run gateway rss --workers 2 --idle-timeout 10 --clients 8 --requests 16

The gateway starts with no worker running; the burst's first request starts one (cold start), and the pool starts
the next when every running one is busy. After the burst every worker sits idle for ``--idle-timeout`` seconds,
exits, and the tree's RSS falls back to the gateway's own. One record (``experiment: rss_burst``) with the sampled
timeline goes to reports/gateway/gateway.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from rich.console import Console

from asrforge.experiments.gateway.common import (
    TreeMemory,
    append_record,
    dev_clips,
    gateway_overrides,
    server,
    workers,
)
from asrforge.experiments.load.clients import Target, http_request


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrforge run gateway rss", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--idle-timeout", type=float, default=10.0, help="serving.gateway.idle_timeout_s")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients in the burst")
    p.add_argument("--requests", type=int, default=16, help="requests in the burst (dev files, in turn)")
    p.add_argument("--quiet-s", type=float, default=5.0, help="seconds sampled before the burst and after reclaim")
    return p


async def burst(url: str, clients: int, total: int) -> tuple[int, int]:
    clips = dev_clips(8)
    target = Target(url)
    queue = list(range(total))
    ok = 0

    async def client() -> None:
        nonlocal ok
        while queue:
            index = queue.pop()
            outcome = await http_request(target, clips[index % len(clips)], time.perf_counter() + 600)
            ok += outcome.status == "ok"

    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        await target.aclose()
    return total, ok


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    threads = max(1, 2 // args.workers)
    overrides = gateway_overrides(args.workers, 0, args.idle_timeout, threads)
    with server("rss-gateway", overrides, console) as gateway, TreeMemory(gateway.pid) as memory:
        time.sleep(args.quiet_s)
        burst_began = memory.sample()["t_s"]
        sent, ok = asyncio.run(burst(gateway.url, args.clients, args.requests))
        burst_ended = memory.sample()["t_s"]
        cold_starts = [s for w in workers(gateway.url) for s in w["cold_starts_s"]]
        console.print(f"burst: {ok}/{sent} answered; cold starts {cold_starts}; waiting for the workers to exit")
        deadline = time.monotonic() + args.idle_timeout + 120
        while memory.sample()["worker_processes"] and time.monotonic() < deadline:
            time.sleep(0.1)
        reclaimed_at = memory.sample()["t_s"]
        time.sleep(args.quiet_s)
    samples = memory.samples

    def phase(begin: float, end: float) -> list[dict]:
        return [s for s in samples if begin <= s["t_s"] <= end] or samples[-1:]

    def total(sample: dict) -> float:
        return sample["gateway_mb"] + sample["workers_mb"]

    before, during, after = phase(0, burst_began), phase(burst_began, burst_ended), phase(reclaimed_at, 1e9)
    peak = max(during, key=total)
    record = {
        "experiment": "rss_burst",
        "workers": args.workers,
        "threads_per_worker": threads,
        "idle_timeout_s": args.idle_timeout,
        "burst": {"clients": args.clients, "requests": sent, "answered": ok},
        "burst_window_s": [burst_began, burst_ended],
        "rss_mb": {
            "before": {"gateway": before[-1]["gateway_mb"], "workers": before[-1]["workers_mb"]},
            "peak_during": {
                "gateway": peak["gateway_mb"],
                "workers": peak["workers_mb"],
                "worker_processes": peak["worker_processes"],
            },
            "after": {"gateway": after[-1]["gateway_mb"], "workers": after[-1]["workers_mb"]},
        },  # fmt: skip
        "cold_starts_s": cold_starts,
        # From the burst's last answer to the last worker process gone: the idle timeout plus the shutdown.
        "reclaimed_after_s": round(reclaimed_at - burst_ended, 2),
        "samples": samples,
    }
    path = append_record(record)
    rss = record["rss_mb"]
    console.print(f"rss before {rss['before']}, peak {rss['peak_during']}, after {rss['after']}")
    console.print(f"reclaimed {record['reclaimed_after_s']} s after the burst -> {path}")
    return 0
