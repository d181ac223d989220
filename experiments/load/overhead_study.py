"""``asrforge run load --overhead-only``: the server overhead and its parts, without the load (a few minutes).

For each server it starts ``asrforge serve``, times lone requests to the idle server against the bare engine
(experiments/load/overhead.py: the figures and field names of the load test's ``overhead``), stops it, and appends
one record to ``<report-dir>/overhead.jsonl``; ``overhead.md`` is rendered from them (overhead_report.py). To judge a
change to the request path, run it on both commits one after the other on a quiet machine::

    asrforge run load --overhead-only --servers uvicorn --overhead-requests 50
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from asrforge.combination import Combination
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import device_info, versions
from asrforge.experiments.jsonl import append_jsonl
from asrforge.experiments.load.clients import Target
from asrforge.experiments.load.overhead import measure_overhead
from asrforge.experiments.load.overhead_report import OVERHEAD_RESULTS, write_overhead_report
from asrforge.experiments.load.server import CpuMeter, ServerProcess


def run_overhead(
    servers: Sequence[str | None], paths: Sequence[Path], args: argparse.Namespace, batch: str, console: Console
) -> int:
    from asrforge.experiments.load.run import _device_of, _served  # run.py imports this module

    path = next((p for p in paths if p.name == args.overhead_file), paths[0])
    n = max(1, args.overhead_requests)
    for server in servers:
        commit = git_commit()
        combination, origin, scheduler, policy = _served(args.overrides)
        load_before = os.getloadavg()[0]

        if args.url:
            server_info: dict[str, Any] = {"name": "external", "url": args.url, "log_errors": 0}
            overhead, foreign_cpu = asyncio.run(_measure(args.url, path, combination, policy, n, args, console)), None
        else:
            log = args.log_dir / f"{batch}-{server}-overhead.log"
            with ServerProcess(server, args.overrides, log, console) as process:
                meter = CpuMeter(process.pid)
                overhead = asyncio.run(_measure(process.url, path, combination, policy, n, args, console))
                foreign_cpu = meter.stop()
            server_info = process.info()
        gc.collect()  # the bare engine, before the next server loads its own
        record = {
            "batch": batch,
            "run_id": f"{batch}-{server_info['name']}",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": commit,
            "device": device_info(_device_of(combination)),
            "versions": versions(),
            "settings": {"overrides": list(args.overrides), "scheduler": scheduler},
            "combination": {"model": combination.model_name, "plugins": list(combination.plugins), "origin": origin},
            "server": server_info,
            "foreign_cpu": foreign_cpu,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "overhead": overhead,
        }
        append_jsonl(args.report_dir / OVERHEAD_RESULTS, [record])
        parts = overhead.get("parts_p50_ms") or {}
        console.print(
            f"[bold]{server_info['name']}[/]: HTTP - server's engine time {overhead['http_minus_server_engine_ms']} "
            f"ms (plain httpx {overhead['plain_http_minus_server_engine_ms']} ms, /health {overhead['health_p50_ms']}"
            f" ms); parts p50 ms: " + ", ".join(f"{name} {value}" for name, value in parts.items())
        )
    console.print(f"wrote {args.report_dir / OVERHEAD_RESULTS} and {write_overhead_report(args.report_dir)}")
    return 0


async def _measure(
    url: str, path: Path, combination: Combination, policy: str, n: int, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    from asrforge.experiments.load.run import _progress

    target = Target(url, args.api_key)
    try:
        with _progress(console) as progress:
            return await measure_overhead(target, path, combination, policy, n, progress)
    finally:
        await target.aclose()
