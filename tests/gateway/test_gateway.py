"""The gateway in front of a real worker process: answers through it equal the worker's own, a worker killed
mid-request costs its caller a retryable 503 (never a hang) and is restarted, and an idle worker exits and comes
back on demand."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from asrforge.experiments.load.clients import Clip, Target, requests

# A bound against a hang only: a caller whose worker died must hear so long before this.
NO_HANG_S = 120


def _answers(base_url: str, clip: Clip) -> dict[str, str | None]:
    """The text each kind of client (openai HTTP, openai SSE, realtime WebSocket) gets for ``clip``."""

    async def run() -> dict[str, str | None]:
        target = Target(base_url)
        try:
            outcomes = {
                kind: await request(target, clip, time.perf_counter() + NO_HANG_S)
                for kind, request in requests(speed=0).items()
            }
        finally:
            await target.aclose()
        assert all(o.status == "ok" for o in outcomes.values()), {k: o.detail for k, o in outcomes.items()}
        return {kind: outcome.text for kind, outcome in outcomes.items()}

    return asyncio.run(run())


def test_every_kind_of_client_gets_the_workers_own_answer(gateway: Any, jfk_path: Path) -> None:
    clip = Clip.from_path(jfk_path)
    through_gateway = _answers(gateway.url, clip)  # the first request starts the worker
    worker = gateway.workers()[0]
    assert worker["state"] == "ready" and len(worker["cold_starts_s"]) == 1
    assert "ask not what your country can do for you" in through_gateway["http"].lower()
    assert through_gateway == _answers(worker["url"], clip)

    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    assert "whisper-1" in [model.id for model in client.models.list().data]


def test_a_worker_killed_mid_request_gives_its_caller_a_503_and_comes_back(
    gateway: Any, long_audio: Path, jfk_path: Path
) -> None:
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        with long_audio.open("rb") as file:
            result["response"] = httpx.post(
                f"{gateway.url}/v1/audio/transcriptions",
                data={"model": "whisper-1"},
                files={"file": (long_audio.name, file)},
                timeout=NO_HANG_S,
            )

    caller = threading.Thread(target=call)
    caller.start()
    worker = gateway.wait_for(lambda w: w["state"] == "ready" and w["in_flight"] == 1)
    time.sleep(1.0)  # the worker is decoding the long file now
    os.kill(worker["pid"], signal.SIGKILL)
    caller.join(NO_HANG_S)
    assert not caller.is_alive(), "the caller of a killed worker hung"

    response = result["response"]
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "worker_unavailable" and error["type"] == "server_error"

    # Restarted without being asked: the next request waits for the new process and is answered.
    with jfk_path.open("rb") as file:
        again = httpx.post(
            f"{gateway.url}/v1/audio/transcriptions",
            data={"model": "whisper-1"},
            files={"file": (jfk_path.name, file)},
            timeout=NO_HANG_S,
        )
    assert again.status_code == 200 and "ask not what your country" in again.json()["text"].lower()
    restarted = gateway.workers()[0]
    assert restarted["restarts"] == 1 and restarted["pid"] != worker["pid"]


def test_an_idle_worker_exits_and_starts_again_on_demand(gateway: Any, jfk_path: Path) -> None:
    running = gateway.wait_for(lambda w: w["state"] == "ready")
    starts = len(running["cold_starts_s"])
    gateway.pool.idle_timeout_s = 0.5
    try:
        stopped = gateway.wait_for(lambda w: w["state"] == "stopped")
    finally:
        gateway.pool.idle_timeout_s = None
    assert stopped["last_exit"] == "idle" and stopped["rss_mb"] is None
    assert not psutil.pid_exists(running["pid"]) or psutil.Process(running["pid"]).status() == psutil.STATUS_ZOMBIE

    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=NO_HANG_S)
    with jfk_path.open("rb") as file:
        text = client.audio.transcriptions.create(model="whisper-1", file=file).text
    assert "ask not what your country" in text.lower()
    assert len(gateway.workers()[0]["cold_starts_s"]) == starts + 1


@pytest.fixture(scope="module")
def long_audio(dev_dir: Path) -> Path:
    """The 248-s concatenation of the dev set: long enough to be in flight when the worker is killed."""
    return dev_dir.parent / "long" / "dev_concat_once.wav"
