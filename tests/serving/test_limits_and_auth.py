"""API keys, backpressure (429 + Retry-After), disconnects that free their work, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
import websockets

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def test_api_keys_are_checked_like_openai(make_server, jfk_bytes, jfk_transcript):
    with make_server(api_keys=["sk-right"]) as live:
        files = {"file": ("jfk.wav", jfk_bytes)}
        response = httpx.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"}, timeout=60)
        assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
        wrong = openai.OpenAI(base_url=f"{live.url}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1")
        right = openai.OpenAI(base_url=f"{live.url}/v1", api_key="sk-right", max_retries=0)
        assert right.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1").text == (
            jfk_transcript.text
        )
        assert httpx.get(live.url + "/health").status_code == 200  # probes need no key

        async def handshake(headers: dict) -> None:
            async with websockets.connect(live.ws_url + "/v1/realtime", additional_headers=headers) as ws:
                assert json.loads(await ws.recv())["type"] == "transcription_session.created"

        with pytest.raises(websockets.exceptions.InvalidStatus):
            asyncio.run(handshake({}))
        asyncio.run(handshake({"Authorization": "Bearer sk-right"}))


def test_a_full_queue_answers_429_with_retry_after_and_loses_nothing(make_server, jfk_bytes, jfk_transcript):
    with make_server(scheduler={"max_queue": 1, "max_batch_size": 1}) as live:

        async def one(client: httpx.AsyncClient) -> httpx.Response:
            files = {"file": ("jfk.wav", jfk_bytes)}
            return await client.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"})

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*(one(client) for _ in range(6)))

        responses = asyncio.run(burst())
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 429} and statuses.count(429) >= 1 and statuses.count(200) >= 1
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["type"] == "rate_limit_error"
            else:
                assert response.json()["text"] == jfk_transcript.text
        assert "asrforge_rejected_total" in httpx.get(live.url + "/metrics").text


def test_a_burst_beyond_the_expected_wait_gets_429_with_a_retry_after_that_works(
    make_server, jfk_bytes, jfk_transcript
):
    # max_wait_s below one decode: while one request decodes, every other one is refused with the time its wait
    # would exceed the limit by; clients that honour the Retry-After all get their transcript in the end.
    with make_server(scheduler={"max_batch_size": 1, "max_wait_s": 0.01}) as live:
        files = {"file": ("jfk.wav", jfk_bytes)}
        assert httpx.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"}, timeout=120).is_success
        retry_afters: list[int] = []

        async def until_served(client: httpx.AsyncClient) -> str:
            while True:
                response = await client.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"})
                if response.status_code != 429:
                    assert response.status_code == 200, response.text
                    return response.json()["text"]
                assert response.json()["error"]["type"] == "rate_limit_error"
                assert "expected wait" in response.json()["error"]["message"]
                retry_afters.append(int(response.headers["retry-after"]))
                await asyncio.sleep(retry_afters[-1])

        async def burst() -> list[str]:
            async with httpx.AsyncClient(timeout=120) as client:
                return await asyncio.gather(*(until_served(client) for _ in range(5)))

        assert asyncio.run(burst()) == [jfk_transcript.text] * 5
        speed = live.state.scheduler.speed.audio_per_s
        assert retry_afters and min(retry_afters) >= 1
        assert max(retry_afters) <= 2 * 5 * jfk_transcript.duration_s / speed + 1  # the backlog over the speed


def test_a_client_that_leaves_mid_stream_frees_its_work_and_others_are_unaffected(
    make_server, long_once, jfk_bytes, jfk_transcript
):
    path, _ = long_once
    with make_server(scheduler={"max_batch_size": 1}) as live:
        scheduler = live.state.scheduler
        audio_before = scheduler.metrics.audio_seconds._value.get()
        with httpx.stream(
            "POST",
            live.url + TRANSCRIPTIONS,
            files={"file": (path.name, path.read_bytes())},
            data={"model": "whisper-1", "stream": "true"},
            timeout=120,
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # one delta, then hang up
        # Another client, right after: its own transcript, served without waiting for the abandoned chunks.
        response = httpx.post(
            live.url + TRANSCRIPTIONS, files={"file": ("jfk.wav", jfk_bytes)}, data={"model": "whisper-1"}, timeout=120
        )
        assert response.json()["text"] == jfk_transcript.text
        deadline = time.monotonic() + 30
        while scheduler._queue and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not scheduler._queue
        decoded = scheduler.metrics.audio_seconds._value.get() - audio_before
        assert decoded < 120, f"{decoded:.0f} s of a 248-s file decoded after its client left"


def test_health_ready_and_metrics(server, jfk_bytes):
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    assert httpx.get(server.url + "/ready").json() == {"status": "ready"}
    httpx.post(
        server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"model": "whisper-1"}, timeout=60
    )
    metrics = httpx.get(server.url + "/metrics").text
    for name in (
        'asrforge_request_latency_seconds_count{endpoint="/v1/audio/transcriptions",status="200"}',
        "asrforge_queue_depth",
        "asrforge_batch_size_count",
        "asrforge_audio_seconds_total",
        "asrforge_real_time_factor_count",
    ):
        assert name in metrics, name


def test_every_path_runs_the_repetition_guard(server, make_server, tiny_engine):
    """Files, streams and realtime all decode through the engine's output hooks, where the guard sits."""
    assert "repetition_guard" in server.state.scheduler.engine.applied_plugins
    assert tiny_engine.applied_plugins.count("repetition_guard") == 1  # a second app does not add it twice
    with make_server() as again:
        assert again.state.scheduler.engine.applied_plugins.count("repetition_guard") == 1


def test_ready_waits_for_the_model(tiny_engine):
    """/ready is 503 until the executor has loaded and warmed up the model; /health answers at once."""
    from asrforge.serving.app import create_app
    from asrforge.serving.scheduler import InferenceScheduler

    slow = InferenceScheduler(lambda: (time.sleep(1.0), tiny_engine)[1])
    app = create_app({"serving": {"warmup": False}}, engine=tiny_engine)
    app.state.scheduler = slow
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        slow.start()
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200
        deadline = time.monotonic() + 30
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/ready").json() == {"status": "ready"}
    slow.stop()


def test_request_timeout_answers_504_and_the_server_goes_on(make_server, jfk_bytes, jfk_transcript):
    with make_server(limits={"request_timeout_s": 0.05}) as live:
        files = {"file": ("jfk.wav", jfk_bytes)}
        response = httpx.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"}, timeout=60)
        assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
    with make_server() as live:
        response = httpx.post(live.url + TRANSCRIPTIONS, files=files, data={"model": "whisper-1"}, timeout=60)
        assert response.json()["text"] == jfk_transcript.text


def test_cors_is_off_unless_configured(server, make_server):
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in httpx.options(server.url + TRANSCRIPTIONS, headers=preflight).headers
    with make_server(cors_origins=["https://app.example.com"]) as live:
        response = httpx.options(live.url + TRANSCRIPTIONS, headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://app.example.com"
