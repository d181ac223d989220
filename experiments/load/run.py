"""``asrforge loadtest``: a bounded load test of the OpenAI-compatible server, on loopback.

For each server (``--servers``, default uvicorn then granian, one after the other) it starts ``asrforge serve`` on a
free port with the given Hydra overrides, waits for /ready, takes every dev file's transcript from one lone request
of each kind, runs N concurrent clients (plain HTTP, SSE, WebSocket) for the load window and checks every answer
against its file's lone transcript, measures the server overhead against the bare engine with the server idle, stops
the server and scans its log. One record per server goes to ``<report-dir>/loadtest.jsonl``; the README is rendered
from the records::

    asrforge run load                                  # 64 clients, 60 s, both servers
    asrforge run load --servers granian --clients 8 --duration 10
    asrforge run load serving.scheduler.max_batch_size=1   # overrides for the server
    asrforge run load --url http://127.0.0.1:8000       # a server already running
    asrforge run load --overhead-only --servers uvicorn # the server overhead and its parts alone (overhead.md)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from omegaconf import OmegaConf
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from asrforge.combination import Combination
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.bench.run_row import cpu_sample
from asrforge.experiments.device import device_info, versions
from asrforge.experiments.jsonl import append_jsonl
from asrforge.experiments.load.clients import KINDS, Clip, Outcome, Target, requests
from asrforge.experiments.load.overhead import measure_overhead
from asrforge.experiments.load.report import write_readme
from asrforge.experiments.load.server import CpuMeter, ServerProcess, scrape_metrics
from asrforge.experiments.load.summary import RESULTS, failed_checks, summarise
from asrforge.paths import eval_data_dir
from asrforge.quiet import quiet_third_party
from asrforge.serving.app import served_combination
from asrforge.serving.run import SERVERS, serve_config
from asrforge.serving.settings import ServerSettings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrforge run load", description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default="uvicorn,granian", help="ASGI servers to start and load in turn")
    p.add_argument("--url", help="load the server already running at this URL instead of starting one")
    p.add_argument("--api-key", help="Bearer key, when the server has serving.api_keys")
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    p.add_argument("--duration", type=float, default=60, help="seconds of load; no request starts after it")
    p.add_argument("--mix", default="http=2,sse=1,ws=1", help="share of clients of each kind (default 2:1:1)")
    p.add_argument("--ws-speed", type=float, default=1.0, help="WebSocket pacing, x real time; 0 = unpaced")
    p.add_argument("--frame-ms", type=int, default=100, help="WebSocket PCM16 frame length (default 100 ms)")
    p.add_argument("--files", type=int, help="the first N files of the manifest (default: all)")
    p.add_argument("--manifest", type=Path, help="default: the dev set's manifest.jsonl")
    p.add_argument("--drain", type=float, default=300, help="seconds in-flight requests get after the load window")
    p.add_argument("--overhead-requests", type=int, default=20, help="lone requests for the overhead; 0 = skip")
    p.add_argument("--overhead-file", default="fasterwhisper_jfk.wav", help="the manifest file timed for it")
    p.add_argument(
        "--overhead-only",
        action="store_true",
        help="only the server overhead and its parts (no load): records in overhead.jsonl, rendered to overhead.md",
    )
    p.add_argument("--report-dir", type=Path, default=Path("reports/serving"))
    p.add_argument("--log-dir", type=Path, default=Path("outputs/loadtest"), help="where server logs go")
    p.add_argument("--render", action="store_true", help="only re-render the README from the records")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for asrforge serve (and the bare engine)")
    return p


def client_kinds(mix: str, clients: int) -> list[str]:
    """``http=2,sse=1,ws=1`` over ``clients``: each kind's share (largest remainders), interleaved."""
    weights = {kind: 0.0 for kind in KINDS}
    for part in filter(None, mix.split(",")):
        kind, _, weight = part.partition("=")
        if kind.strip() not in weights:
            raise SystemExit(f"asrforge run load: unknown kind {kind!r} in --mix (known: {', '.join(KINDS)})")
        weights[kind.strip()] = float(weight or 1)
    total = sum(weights.values())
    if total <= 0 or clients <= 0:
        raise SystemExit("asrforge run load: --mix needs a positive weight and --clients a positive count")
    exact = {kind: clients * weight / total for kind, weight in weights.items()}
    counts = {kind: int(share) for kind, share in exact.items()}
    for kind in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: clients - sum(counts.values())]:
        counts[kind] += 1
    order = sorted(((i + 0.5) / n, kind) for kind, n in counts.items() for i in range(n))
    return [kind for _, kind in order]


def load_clips(manifest: Path, limit: int | None) -> list[Path]:
    entries = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [manifest.parent / entry["audio"] for entry in entries[:limit]]


async def reference_transcripts(
    target: Target, clips: Sequence[Clip], kinds: Sequence[str], progress: Progress
) -> dict[str, dict[str, str]]:
    """Each file's transcript from one lone request of each kind (WebSocket unpaced: its VAD cuts depend on the
    frames, not on their timing)."""
    lone = requests(speed=0)
    task = progress.add_task("lone requests", total=len(kinds) * len(clips))
    references: dict[str, dict[str, str]] = {}
    for kind in kinds:
        for clip in clips:
            outcome = await lone[kind](target, clip, time.perf_counter() + 300)
            if outcome.status != "ok":
                raise RuntimeError(
                    f"the lone {kind} request for {clip.name} failed: {outcome.status}: {outcome.detail}"
                )
            references.setdefault(kind, {})[clip.name] = outcome.text
            progress.advance(task)
    progress.remove_task(task)
    return references


async def run_load(
    target: Target,
    clips: Sequence[Clip],
    kinds: Sequence[str],
    args: argparse.Namespace,
    progress: Progress,
    metrics: httpx.AsyncClient,
) -> tuple[list[Outcome], float, float, list[tuple[float, dict[str, float]]]]:
    """N clients, each sending its kind of request back to back (cycling through the files from its own offset)
    until the window ends; in-flight requests get ``drain`` seconds more. Returns outcomes, the window, and the
    server's counters sampled about once a second (seconds since the start, counters)."""
    by_kind = requests(args.ws_speed, args.frame_ms)
    start = time.perf_counter()
    stop = start + args.duration
    deadline = stop + args.drain
    outcomes: list[Outcome] = []

    async def client(index: int, kind: str) -> None:
        sent = 0
        while time.perf_counter() < stop:
            outcomes.append(await by_kind[kind](target, clips[(index + sent) % len(clips)], deadline))
            sent += 1

    tasks = [asyncio.create_task(client(index, kind)) for index, kind in enumerate(kinds)]
    task = progress.add_task("load", total=args.duration)
    pending = set(tasks)
    samples = [(0.0, await _sample(metrics))]
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.5)
        now = time.perf_counter()
        if now - start - samples[-1][0] >= 1.0 or not pending:
            samples.append((now - start, await _sample(metrics)))
        failed = sum(o.status != "ok" for o in outcomes)
        phase = "load" if now < stop else "drain"
        progress.update(
            task,
            completed=min(now - start, args.duration),
            description=f"{phase}: {len(outcomes)} answered or failed ({failed} failed), {len(pending)} clients busy",
        )
    progress.remove_task(task)
    for finished in tasks:
        finished.result()  # a client that crashed is a bug in the load test: surface it
    return outcomes, start, stop, samples


async def _sample(metrics: httpx.AsyncClient) -> dict[str, float]:
    """The server's counters, and the CPU seconds the machine and this process (the clients) had used."""
    sample = await scrape_metrics(metrics)
    cpu = cpu_sample()
    if cpu is not None:
        _, machine_s, cpus, clients_s = cpu
        sample.update(machine_cpu_s=machine_s, clients_cpu_s=clients_s, cpus=cpus)
    return sample


def busy_by_phase(samples: list[tuple[float, dict[str, float]]], window_s: float) -> dict[str, dict[str, float]]:
    """The share of each phase's wall time the engine spent in batch decodes and in other model calls (stream
    steps): where a throughput below the bare engine's goes (idle in the drain, partials, or neither). With /proc,
    also the share of the machine's CPU that was busy and that the clients (this process) took: the 64 clients run
    on the server's cores, so what they take the engine's decodes cannot use."""
    cut = max((i for i, (t, _) in enumerate(samples) if t <= window_s), default=0)
    phases = {"load": (samples[0], samples[cut]), "drain": (samples[cut], samples[-1])}
    shares: dict[str, dict[str, float]] = {}
    for phase, ((t0, a), (t1, b)) in phases.items():
        if t1 - t0 >= 1.0:
            shares[phase] = {
                "wall_s": round(t1 - t0, 1),
                "decodes": round((b["inference_sum"] - a["inference_sum"]) / (t1 - t0), 2),
                "calls": round((b["call_sum"] - a["call_sum"]) / (t1 - t0), 2),
            }
            if "cpus" in a:
                capacity = (t1 - t0) * a["cpus"]
                shares[phase]["machine_cpu"] = round((b["machine_cpu_s"] - a["machine_cpu_s"]) / capacity, 2)
                shares[phase]["clients_cpu"] = round((b["clients_cpu_s"] - a["clients_cpu_s"]) / capacity, 2)
    return shares


async def measure(
    url: str,
    clips: Sequence[Clip],
    paths: Sequence[Path],
    combination: Combination,
    policy: str,
    args: argparse.Namespace,
    console: Console,
) -> dict[str, Any]:
    target = Target(url, args.api_key)
    kinds = client_kinds(args.mix, args.clients)
    try:
        with _progress(console) as progress:
            references = await reference_transcripts(target, clips, sorted(set(kinds), key=KINDS.index), progress)
            async with httpx.AsyncClient(base_url=target.base_url) as plain:
                before = await scrape_metrics(plain)
                outcomes, start, stop, samples = await run_load(target, clips, kinds, args, progress, plain)
                after = await scrape_metrics(plain)
            overhead = None
            if args.overhead_requests > 0:
                path = next((p for p in paths if p.name == args.overhead_file), paths[0])
                arrays = [np.frombuffer(clip.pcm16, "<i2").astype(np.float32) / 32768 for clip in clips]
                overhead = await measure_overhead(
                    target, path, combination, policy, args.overhead_requests, progress, arrays
                )
    finally:
        await target.aclose()
    summary = summarise(outcomes, references, start, stop)
    decodes = after["batch_count"] - before["batch_count"]
    wall = summary["throughput"]["wall_s"]
    return {
        **summary,
        "server_metrics": {
            "decodes": int(decodes),
            "mean_batch": round((after["batch_sum"] - before["batch_sum"]) / decodes, 2) if decodes else None,
            "engine_busy": round((after["inference_sum"] - before["inference_sum"]) / wall, 2),
            "rejected_429": int(after["rejected"] - before["rejected"]),
            "calls_busy": round((after["call_sum"] - before["call_sum"]) / wall, 2),
            "busy_by_phase": busy_by_phase(samples, stop - start),
        },
        "mix": {kind: kinds.count(kind) for kind in KINDS},
        "overhead": overhead,
    }


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console)


def run_one(
    server: str | None,
    clips: Sequence[Clip],
    paths: Sequence[Path],
    args: argparse.Namespace,
    batch: str,
    console: Console,
) -> dict[str, Any]:
    """Start ``server`` (or use ``--url``), measure, stop it; returns the run's record."""
    commit = git_commit()  # before the server starts: the code it runs, not the code at the end of the run
    combination, origin, scheduler, policy = _served(args.overrides)
    if args.url:
        server_info: dict[str, Any] = {"name": "external", "url": args.url, "log_errors": 0}
        results = asyncio.run(measure(args.url, clips, paths, combination, policy, args, console))
        foreign_cpu = None
    else:
        with ServerProcess(server, args.overrides, args.log_dir / f"{batch}-{server}.log", console) as process:
            meter = CpuMeter(process.pid)
            results = asyncio.run(measure(process.url, clips, paths, combination, policy, args, console))
            foreign_cpu = meter.stop()
        server_info = process.info()
    gc.collect()  # the bare engine of the overhead measurement, before the next server loads its own
    record = {
        "batch": batch,
        "run_id": f"{batch}-{server_info['name']}",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "device": device_info(_device_of(combination)),
        "versions": versions(),
        "settings": {
            "clients": args.clients,
            "duration_s": args.duration,
            "mix": results.pop("mix"),
            "ws_speed": args.ws_speed,
            "frame_ms": args.frame_ms,
            "files": len(clips),
            "drain_s": args.drain,
            "overrides": list(args.overrides),
            "scheduler": scheduler,
        },
        "combination": {"model": combination.model_name, "plugins": list(combination.plugins), "origin": origin},
        "server": server_info,
        "foreign_cpu": foreign_cpu,
        **results,
    }
    record["passed"] = not failed_checks(record)
    return record


def _served(overrides: Sequence[str]) -> tuple[Combination, str, dict[str, Any], str]:
    """The combination the server resolves from the same overrides (as serving/app.py does, the repetition guard
    it adds included), its scheduler settings and its default decoding policy."""
    cfg = serve_config(overrides)
    settings = ServerSettings.from_config(cfg.serving)
    combination, origin = served_combination(cfg, settings)
    return combination, origin, OmegaConf.to_container(cfg.serving.scheduler, resolve=True), settings.decode


def _device_of(combination: Combination) -> str:
    import torch

    device = str(combination.engine.get("device", "auto"))
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def _print_summary(record: Mapping[str, Any], console: Console) -> None:
    total, latency, throughput = record["counts"]["all"], record["latency_ms"], record["throughput"]
    console.print(
        f"[bold]{record['server']['name']}[/]: {total['sent']} sent, {total['correct']} correct, "
        f"{total['mismatched']} mismatched ({total['mixups']} mix-ups), {total['lost']} lost, {total['4xx']} 4xx, "
        f"{total['5xx']} 5xx, {total['errors']} error events, {total['retries_429']} 429 retried; "
        f"{throughput['requests_per_s']} req/s, {throughput['audio_s_per_s']} audio s/s"
    )
    for kind, value in latency.items():
        first = f", first delta p50 {value['first_delta_p50']:.0f} ms" if value.get("first_delta_p50") else ""
        console.print(f"  {kind}: p50 {value['p50']:.0f} ms, p95 {value['p95']:.0f} ms (n={value['n']}){first}")
    overhead = record.get("overhead")
    if overhead:
        console.print(
            f"  overhead on {overhead['file']}: HTTP p50 {overhead['http_p50_ms']} ms - bare p50 "
            f"{overhead['bare_p50_ms']} ms = {overhead['overhead_ms']} ms (paired {overhead['paired_overhead_ms']} "
            f"ms; HTTP - server's engine time {overhead['http_minus_server_engine_ms']} ms)"
        )
    failed = failed_checks(record)
    console.print("  [red]failed: " + "; ".join(failed) + "[/]" if failed else "  [green]passed[/]")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    quiet_third_party()
    console = Console(stderr=True, soft_wrap=True)
    if args.render:
        console.print(f"wrote {write_readme(args.report_dir)}")
        return 0
    servers = [None] if args.url else [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = [name for name in servers if name is not None and name not in SERVERS]
    if unknown:
        raise SystemExit(f"asrforge run load: unknown server(s) {', '.join(unknown)} (known: {', '.join(SERVERS)})")
    paths = load_clips(args.manifest or eval_data_dir() / "dev" / "manifest.jsonl", args.files)
    batch = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    if args.overhead_only:
        from asrforge.experiments.load.overhead_study import run_overhead

        return run_overhead(servers, paths, args, batch, console)
    clips = [Clip.from_path(path) for path in paths]
    console.print(
        f"asrforge loadtest {batch}: {args.clients} clients x {args.duration:g} s, mix {args.mix}, "
        f"{len(clips)} files, servers {', '.join(s or args.url for s in servers)}"
    )
    passed = True
    for server in servers:
        record = run_one(server, clips, paths, args, batch, console)
        append_jsonl(args.report_dir / RESULTS, [record])
        _print_summary(record, console)
        passed = passed and record["passed"]
    console.print(f"wrote {args.report_dir / RESULTS} and {write_readme(args.report_dir)}")
    return 0 if passed else 1
