"""Ray Serve serving the same requests as the single-process server, correctly, on a local Ray cluster::

    asrforge run gateway ray --clients 12 --duration 40 --max-replicas 2

First the single-process server answers one lone request of each kind (HTTP, SSE, WebSocket) per file: the
references. Then a local Ray (``--cpus`` CPUs) runs the same app as a Serve deployment, autoscaled between 1 and
``--max-replicas`` replicas on ongoing requests per replica, and ``--clients`` mixed clients load it for
``--duration`` seconds; every answer is compared with the single server's, and the running replica count is
sampled every second (autoscaling at work). One record (``experiment: ray_serve``) goes to
reports/gateway/gateway.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
from rich.console import Console

from asrforge.experiments.gateway.common import MODEL_OVERRIDES, append_record, correctness, dev_clips, lone_references
from asrforge.experiments.gateway.common import server as server_process
from asrforge.experiments.load.clients import KINDS, Clip, Outcome, Target, requests
from asrforge.experiments.load.server import free_port
from asrforge.serving.run import serve_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrforge run gateway ray", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=12)
    p.add_argument("--duration", type=float, default=40.0)
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    p.add_argument("--max-replicas", type=int, default=2)
    p.add_argument("--target-ongoing", type=float, default=2, help="serving.ray.target_ongoing_requests")
    return p


async def load(url: str, clips: list[Clip], references: dict, args: argparse.Namespace) -> dict[str, Any]:
    from asrforge.serving.ray_serve import replica_count

    target = Target(url)
    by_kind = requests(speed=0)
    outcomes: list[Outcome] = []
    replicas: list[tuple[float, int]] = []
    start = time.perf_counter()
    stop = start + args.duration

    async def client(index: int) -> None:
        kind = KINDS[0] if index % 2 == 0 else KINDS[1 + (index // 2) % 2]  # half HTTP, a quarter SSE, a quarter WS
        sent = 0
        while time.perf_counter() < stop:
            outcomes.append(await by_kind[kind](target, clips[(index + sent) % len(clips)], stop + 300))
            sent += 1

    async def watch() -> None:
        while time.perf_counter() < stop + 5:
            count = await asyncio.to_thread(replica_count)
            replicas.append((round(time.perf_counter() - start, 1), count))
            await asyncio.sleep(1)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(client(i) for i in range(args.clients)))
    watcher.cancel()
    await target.aclose()
    wall = max(o.finished or start for o in outcomes) - start
    return {
        "requests": len(outcomes),
        "by_kind": {kind: sum(o.kind == kind for o in outcomes) for kind in KINDS},
        **correctness(outcomes, references),
        "failed": sum(o.status != "ok" for o in outcomes),
        "failures": sorted({f"{o.kind} {o.status} {o.detail}" for o in outcomes if o.status != "ok"})[:5],
        "audio_s_per_s": round(sum(o.audio_s for o in outcomes if o.status == "ok") / wall, 3),
        "replicas_over_time": replicas,
        "max_replicas_seen": max((count for _, count in replicas), default=0),
    }


async def _references(url: str, clips: list[Clip]) -> dict[str, dict[str, str]]:
    """The single server's lone-request answers; the client is closed on the loop its connections belong to."""
    target = Target(url)
    try:
        return await lone_references(target, clips, list(KINDS))
    finally:
        await target.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    clips = dev_clips(args.files)
    with server_process("ray-reference-single", list(MODEL_OVERRIDES), console) as single:
        references = asyncio.run(_references(single.url, clips))

    import ray
    from ray import serve

    from asrforge.serving import ray_serve

    ray_settings = [
        "serving.ray.min_replicas=1", f"serving.ray.max_replicas={args.max_replicas}",
        f"serving.ray.target_ongoing_requests={args.target_ongoing}", "serving.ray.upscale_delay_s=2",
        "serving.ray.num_cpus=1",
    ]  # fmt: skip
    cfg = serve_config([*MODEL_OVERRIDES, *ray_settings])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        ray_serve.start(cfg, "127.0.0.1", port)
        while httpx.get(f"{url}/ready", timeout=10).status_code != 200:
            time.sleep(0.5)
        startup_s = round(time.perf_counter() - began, 1)
        console.print(f"Ray Serve ready after {startup_s} s")
        result = asyncio.run(load(url, clips, references, args))
    finally:
        serve.shutdown()
        ray.shutdown()
    record = {"experiment": "ray_serve", "ray": ray.__version__, "cpus": args.cpus, "clients": args.clients,
              "duration_s": args.duration, "max_replicas": args.max_replicas, "target_ongoing": args.target_ongoing,
              "startup_s": startup_s, **result}  # fmt: skip
    path = append_record(record)
    console.print({k: v for k, v in record.items() if k != "device"})
    console.print(f"-> {path}")
    return 0
