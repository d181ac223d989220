"""Throughput of 1, 2 and 4 CPU workers behind the gateway against the single-process server, on this machine::

    asrforge run gateway throughput --clients 8 --duration 30 --order single,1,2,4,single

Each configuration in ``--order`` starts fresh (every worker loaded before the load), answers one lone request per
file (the references), then ``--clients`` plain HTTP clients send the dev files back to back for ``--duration``
seconds. Throughput is seconds of audio answered per second of wall time; each configuration's ratio is against
the single-process runs of the same invocation (the mean of them, so drift of a shared machine shows as their
spread). Torch threads: the CPU quota for the single process, quota / workers (at least 1) for each worker. One
record (``experiment: throughput``) goes to reports/gateway/gateway.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from asrforge.cpu import cpu_quota
from asrforge.experiments.gateway.common import (
    MODEL_OVERRIDES,
    append_record,
    correctness,
    dev_clips,
    gateway_overrides,
    lone_references,
    server,
)
from asrforge.experiments.load.clients import Clip, Outcome, Target, http_request
from asrforge.experiments.load.server import CpuMeter


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrforge run gateway throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--order", default="single,1,2,4,single", help="single, or a worker count; in this order")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--files", type=int, default=8)
    return p


async def measure(url: str, clips: list[Clip], clients: int, duration: float) -> dict[str, Any]:
    target = Target(url)
    try:
        references = await lone_references(target, clips, ["http"])
        outcomes: list[Outcome] = []
        start = time.perf_counter()
        stop = start + duration

        async def client(index: int) -> None:
            sent = 0
            while time.perf_counter() < stop:
                outcomes.append(await http_request(target, clips[(index + sent) % len(clips)], stop + 300))
                sent += 1

        await asyncio.gather(*(client(i) for i in range(clients)))
        wall = max(o.finished or start for o in outcomes) - start
    finally:
        await target.aclose()
    audio = sum(o.audio_s for o in outcomes if o.status == "ok")
    return {
        "wall_s": round(wall, 2),
        "audio_s": round(audio, 1),
        "audio_s_per_s": round(audio / wall, 3),
        "requests_per_s": round(sum(o.status == "ok" for o in outcomes) / wall, 3),
        "failed": sum(o.status != "ok" for o in outcomes),
        **correctness(outcomes, references),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    clips = dev_clips(args.files)
    runs: list[dict[str, Any]] = []
    for step, name in enumerate(args.order.split(",")):
        if name == "single":
            overrides, threads, label = list(MODEL_OVERRIDES), cpu_quota(), "single process"
        else:
            count = int(name)
            threads = max(1, cpu_quota() // count)
            overrides, label = gateway_overrides(count, count, None, threads), f"gateway, {count} worker(s)"
        with server(f"throughput-{step}-{name}", overrides, console) as running:
            meter = CpuMeter(running.pid)
            result = asyncio.run(measure(running.url, clips, args.clients, args.duration))
            result["foreign_cpu_share"] = meter.stop()
        runs.append({"config": name, "label": label, "threads_per_process": threads, **result})
        console.print(runs[-1])
    singles = [r["audio_s_per_s"] for r in runs if r["config"] == "single"]
    baseline = sum(singles) / len(singles) if singles else None
    for run in runs:
        run["ratio_to_single"] = round(run["audio_s_per_s"] / baseline, 3) if baseline else None
    path = append_record(
        {"experiment": "throughput", "clients": args.clients, "duration_s": args.duration, "files": args.files,
         "cpu_quota": cpu_quota(), "single_spread": [min(singles), max(singles)] if singles else None, "runs": runs}
    )  # fmt: skip
    console.print(f"-> {path}")
    return 0
