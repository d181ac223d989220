"""Kill -9 a worker under load: every caller gets an answer or a retryable 503 (none hangs), the worker comes back::

    asrforge run gateway kill --clients 32 --duration 40 --kill-at 10

The gateway runs two workers (both started before the load). ``--clients`` clients send requests back to back for
``--duration`` seconds (three in four plain HTTP, one in four SSE through the ``openai`` client); at ``--kill-at``
seconds worker 0 gets SIGKILL. Each request ends as an answer (checked against its file's lone-request transcript),
a 503 (with its Retry-After and error code), an SSE error event, or is still open at the deadline (hung). Recovery:
from the kill to the restarted worker's /ready. One record (``experiment: kill_under_load``) goes to
reports/gateway/gateway.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import httpx
from rich.console import Console

from asrforge.experiments.gateway.common import (
    append_record,
    correctness,
    dev_clips,
    gateway_overrides,
    lone_references,
    server,
    workers,
)
from asrforge.experiments.load.clients import MODEL, Clip, Outcome, Target, sse_request

DRAIN_S = 180  # a request still open this long after the load window is counted as hung


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asrforge run gateway kill", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=40.0, help="seconds of load")
    p.add_argument("--kill-at", type=float, default=10.0, help="seconds into the load when worker 0 is killed")
    p.add_argument("--files", type=int, default=6, help="the first N dev files, in turn")
    return p


async def http_call(client: httpx.AsyncClient, clip: Clip, deadline: float) -> Outcome:
    """One plain transcription; unlike the openai client's, this keeps the 503's Retry-After and error code."""
    outcome = Outcome("http", clip.name, clip.duration_s, time.perf_counter())
    try:
        response = await asyncio.wait_for(
            client.post("/v1/audio/transcriptions", data={"model": MODEL}, files={"file": (clip.name, clip.data)}),
            deadline - outcome.started,
        )
    except TimeoutError:
        return outcome.close("lost", "no answer before the deadline")
    except httpx.HTTPError as error:
        return outcome.close("lost", f"{type(error).__name__}: {error}")
    if response.status_code == 200:
        outcome.text = response.json()["text"]
        outcome.latency_s = time.perf_counter() - outcome.started
        return outcome.close("ok", http_status=200)
    error = response.json().get("error") or {}
    return outcome.close(
        "5xx" if response.status_code >= 500 else "4xx",
        f"code={error.get('code')} retry-after={response.headers.get('retry-after')} message={error.get('message')}",
        response.status_code,
    )


async def load(url: str, clips: list[Clip], args: argparse.Namespace) -> dict[str, Any]:
    target = Target(url)
    plain = httpx.AsyncClient(base_url=url, timeout=None, limits=httpx.Limits(max_connections=args.clients + 8))
    references = await lone_references(target, clips[: args.files], ["http", "sse"])
    start = time.perf_counter()
    stop, deadline = start + args.duration, start + args.duration + DRAIN_S
    outcomes: list[Outcome] = []
    events: dict[str, float] = {}

    async def client(index: int) -> None:
        sent = 0
        while time.perf_counter() < stop:
            clip = clips[(index + sent) % args.files]
            if index % 4 == 3:
                outcomes.append(await sse_request(target, clip, deadline))
            else:
                outcomes.append(await http_call(plain, clip, deadline))
            sent += 1

    async def killer() -> None:
        await asyncio.sleep(args.kill_at)
        victim = workers(url)[0]
        os.kill(victim["pid"], signal.SIGKILL)
        events["killed"] = time.perf_counter()
        while True:
            await asyncio.sleep(0.1)
            now = workers(url)[0]
            if now["state"] == "ready" and now["pid"] != victim["pid"]:
                events["restarted_ready"] = time.perf_counter()
                events["restart_cold_start_s"] = now["cold_starts_s"][-1]
                return

    tasks = [asyncio.create_task(client(i)) for i in range(args.clients)]
    kill_task = asyncio.create_task(killer())
    done, pending = await asyncio.wait([*tasks, kill_task], timeout=deadline - time.perf_counter())
    hung = sum(not t.done() for t in tasks)
    for task in pending:
        task.cancel()
    await target.aclose()
    await plain.aclose()
    return summarise(outcomes, references, events, start, hung)


def summarise(
    outcomes: list[Outcome], references: dict, events: dict[str, float], start: float, hung: int
) -> dict[str, Any]:
    killed = events.get("killed")
    failed = [o for o in outcomes if o.status != "ok"]
    # The openai client (SSE) does not show the error code; the plain HTTP calls carry it and the Retry-After.
    is_503 = [o for o in failed if o.http_status == 503 and (o.kind == "sse" or "code=worker_unavailable" in o.detail)]
    with_retry_after = [o for o in is_503 if o.kind == "http" and "retry-after=None" not in o.detail]
    sse_error_events = [o for o in failed if o.status == "error" and "worker" in (o.detail or "")]
    other = [o for o in failed if o not in is_503 and o not in sse_error_events]
    last_failure = max((o.finished for o in failed if o.finished), default=None)
    # The gateway's 503 and SSE error event name the worker (serving/gateway/worker.py): the killed one is worker 0.
    of_killed_worker = [o for o in failed if "worker 0 " in (o.detail or "")]
    before_kill = [o for o in failed if killed is None or (o.finished or 0) < killed]
    return {
        "requests": len(outcomes),
        "by_kind": {kind: sum(o.kind == kind for o in outcomes) for kind in ("http", "sse")},
        **correctness(outcomes, references),
        "failed": len(failed),
        "failed_503": len(is_503),
        "failed_503_with_retry_after": len(with_retry_after),
        "failed_sse_error_event": len(sse_error_events),
        "failed_other": len(other),
        "failed_other_examples": [f"{o.kind} {o.status} {o.http_status} {o.detail}" for o in other[:5]],
        "failed_naming_killed_worker": len(of_killed_worker),
        "failed_before_kill": len(before_kill),
        "hung_clients": hung,
        "lost": sum(o.status == "lost" for o in outcomes),
        "kill_at_s": round(killed - start, 2) if killed else None,
        "recovery_s": round(events["restarted_ready"] - killed, 2) if "restarted_ready" in events and killed else None,
        "restart_cold_start_s": events.get("restart_cold_start_s"),
        "failures_after_kill_s": round(last_failure - killed, 2) if last_failure and killed else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    clips = dev_clips(args.files)
    with server("kill-gateway", gateway_overrides(2, 2, None, 1), console) as gateway:
        result = asyncio.run(load(gateway.url, clips, args))
    record = {"experiment": "kill_under_load", "workers": 2, "clients": args.clients, "duration_s": args.duration,
              **result}  # fmt: skip
    path = append_record(record)
    console.print({k: v for k, v in record.items() if k not in ("device",)})
    console.print(f"-> {path}")
    return 0
