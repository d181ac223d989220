"""The server's overhead on one file: lone requests to the idle server against the bare engine in this process.

Two processes share the machine's cores, so the calls are interleaved (bare, HTTP, bare, HTTP, ...) and the
machine's drift lands on both sides. Besides the difference of the two p50s, each HTTP request is also set against
the engine time the server itself recorded for it (/metrics), a figure free of the noise between two processes,
and the parts of the overhead that can be timed here are timed: decoding the file's bytes as the server does, a
plain httpx request without the ``openai`` client, and a /health round trip (the HTTP floor). The server's own parts
of each plain request come from its ``Server-Timing`` header (serving/timing.py): ``parse`` ... ``render``, what
the header does not name (``server_other``), and what happens outside the server's app (``outside_app``: the client,
the loopback, uvicorn's own HTTP work).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.progress import Progress

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.constants import SAMPLE_RATE
from asrforge.decoding import with_policy
from asrforge.engines.base import DecodeOptions
from asrforge.experiments.load.clients import MODEL, Target
from asrforge.experiments.load.server import scrape_metrics
from asrforge.experiments.load.summary import percentiles
from asrforge.serving import timing

# The Server-Timing parts that are stretches of the request path besides the engine (serving/timing.py).
SERVER_PARTS = tuple(part for part in timing.PARTS if part not in ("engine", "total", *timing.WITHIN))

WARMUP_CALLS = 3
# Passes of the bare engine over the clips; their median is the throughput's denominator. One pass swung by 13 %
# between two runs on this 2-core machine (14.39 vs 12.69 audio s/s, the same file's p50 within 0.3 %), a swing that
# decided whether the server's throughput met 0.9x of it; a pass takes ~15 s.
BARE_PASSES = 3


async def measure_overhead(
    target: Target,
    path: Path,
    combination: Combination,
    policy: str | None,
    n: int,
    progress: Progress,
    clips: Sequence[np.ndarray] = (),
) -> dict[str, Any]:
    """The overhead on ``path``; with ``clips``, also the bare engine's single-stream speed over them (each decoded
    once, one after another, in each of ``BARE_PASSES`` passes: the median pass is the throughput the server's is set
    against). The bare engine decodes with the server's default ``policy``, as the server does a request that names
    none."""
    task = progress.add_task(f"overhead: loading the bare engine ({path.name})", total=n)
    server_timings: list[dict[str, float]] = []  # each plain request's Server-Timing parts
    engine = await asyncio.to_thread(combination.load)
    options, _ = with_policy(engine, policy, DecodeOptions())
    audio, data = load_audio(path), path.read_bytes()
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}

    def bare(clip: np.ndarray = audio) -> None:
        engine.transcribe([clip], options)

    async def openai_request() -> None:
        await target.client.audio.transcriptions.create(model=MODEL, file=(path.name, data))

    async with httpx.AsyncClient(base_url=target.base_url, headers=headers, timeout=300) as plain:

        async def plain_request() -> None:
            response = await plain.post(
                "/v1/audio/transcriptions", files={"file": (path.name, data)}, data={"model": MODEL}
            )
            response.raise_for_status()
            server_timings.append(timing.parse_header(response.headers.get(timing.HEADER, "")))

        async def served(request: Callable[[], Awaitable[None]]) -> tuple[float, float | None]:
            """The request's latency, and the engine time the server recorded for it (if it was one decode)."""
            before = await scrape_metrics(plain)
            took = await _timed_async(request)
            after = await scrape_metrics(plain)
            one_decode = after["inference_count"] - before["inference_count"] == 1
            return took, after["inference_sum"] - before["inference_sum"] if one_decode else None

        for _ in range(WARMUP_CALLS):
            bare()
            await openai_request()
            await plain_request()
        progress.update(task, description=f"overhead: bare engine and lone requests, interleaved ({path.name})")
        bare_s, decode_s, http_s, http_engine_s, plain_s, plain_engine_s = [], [], [], [], [], []
        server_timings.clear()
        for _ in range(n):
            bare_s.append(_timed(bare))
            decode_s.append(_timed(lambda: load_audio(data)))
            took, engine_s = await served(openai_request)
            http_s.append(took)
            http_engine_s.append(engine_s)
            took, engine_s = await served(plain_request)
            plain_s.append(took)
            plain_engine_s.append(engine_s)
            progress.advance(task)
        health_s = [await _timed_async(lambda: plain.get("/health")) for _ in range(n)]
    progress.remove_task(task)
    passes: list[float] = []  # the bare engine's audio s/s in each pass over the clips
    if clips:
        task = progress.add_task("bare engine: every clip once, one stream", total=BARE_PASSES * len(clips))
        for _ in range(BARE_PASSES):
            seconds = 0.0
            for clip in clips:
                seconds += _timed(lambda clip=clip: bare(clip))
                progress.advance(task)
            passes.append(round(sum(clip.size for clip in clips) / SAMPLE_RATE / seconds, 2))
        progress.remove_task(task)
    bare_p50, http_p50 = percentiles(bare_s)["p50"], percentiles(http_s)["p50"]
    return {
        "file": path.name,
        "audio_s": round(audio.size / SAMPLE_RATE, 2),
        "n": n,
        "bare_p50_ms": bare_p50,
        "http_p50_ms": http_p50,
        "overhead_ms": round(http_p50 - bare_p50, 1),
        "paired_overhead_ms": percentiles(np.subtract(http_s, bare_s))["p50"],
        "server_engine_p50_ms": percentiles(http_engine_s)["p50"],
        "http_minus_server_engine_ms": _p50_minus(http_s, http_engine_s),
        "plain_http_minus_server_engine_ms": _p50_minus(plain_s, plain_engine_s),
        "file_decode_p50_ms": percentiles(decode_s)["p50"],
        "health_p50_ms": percentiles(health_s)["p50"],
        "bare_threads": _torch_threads(),
        "policy": policy,
        "bare_audio_s_per_s": float(np.median(passes)) if passes else None,
        "bare_passes_audio_s_per_s": passes or None,
        "parts_p50_ms": _parts(plain_s, server_timings),
    }


def _parts(latencies_s: list[float], server_timings: list[dict[str, float]]) -> dict[str, float] | None:
    """p50 of each part of the plain requests, in ms: the server's named parts, the rest of its time beside the
    engine, and the time outside its app. p50s of parts do not add up to the p50 of their sum."""
    rows = []
    for latency_s, parts in zip(latencies_s, server_timings, strict=True):
        if "total" not in parts or "engine" not in parts:
            return None  # a server without the header
        named = {part: parts.get(part, 0.0) for part in SERVER_PARTS}
        rows.append(
            {
                **named,
                **{part: parts.get(part, 0.0) for part in timing.WITHIN},
                "server_other": parts["total"] - parts["engine"] - sum(named.values()),
                "outside_app": latency_s * 1000 - parts["total"],
                "server_minus_engine": parts["total"] - parts["engine"],
            }
        )
    return {key: round(float(np.median([row[key] for row in rows])), 3) for key in rows[0]} if rows else None


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


async def _timed_async(call: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await call()
    return time.perf_counter() - began


def _p50_minus(latencies: list[float], engine: list[float | None]) -> float | None:
    """p50 of latency minus the server's engine time, over the requests that were exactly one decode."""
    return percentiles(t - e for t, e in zip(latencies, engine, strict=True) if e is not None)["p50"]


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
