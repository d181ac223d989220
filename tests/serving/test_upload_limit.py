"""UploadLimit at the ASGI level, where the order of body messages can be chosen instead of left to the network."""

from __future__ import annotations

import asyncio
import json

from asrforge.serving.limits import UploadLimit

LIMIT = 1000


async def _reads_whole_body(scope, receive, send):
    """Like a form parser: reads until the body ends or the client goes, then answers 200."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call(messages: list[dict], headers: list[tuple[bytes, bytes]] = ()) -> list[dict]:
    """Runs the middleware; after ``messages`` receive() blocks as a server's does until the client disconnects."""
    sent: list[dict] = []

    async def run() -> None:
        queue = list(messages)
        never = asyncio.Event()

        async def receive():
            if queue:
                return queue.pop(0)
            await never.wait()

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "headers": list(headers)}
        await asyncio.wait_for(UploadLimit(_reads_whole_body, LIMIT)(scope, receive, send), timeout=5)

    asyncio.run(run())
    return sent


def _status_and_body(sent: list[dict]) -> tuple[int, bytes]:
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_chunked_body_that_ends_in_the_message_crossing_the_limit_gets_413_without_waiting():
    # The regression: the whole body arrived in one message, and draining it again waited forever.
    status, body = _status_and_body(_call([{"type": "http.request", "body": b"x" * (LIMIT + 1), "more_body": False}]))
    assert status == 413 and json.loads(body)["error"]["code"] == "file_too_large"


def test_a_chunked_body_still_arriving_is_drained_then_refused():
    chunk = {"type": "http.request", "body": b"x" * 600, "more_body": True}
    last = {"type": "http.request", "body": b"x" * 600, "more_body": False}
    sent = _call([chunk, dict(chunk), last])
    assert _status_and_body(sent)[0] == 413


def test_a_declared_oversized_body_is_refused_and_a_small_one_passes():
    big = [{"type": "http.request", "body": b"x" * (LIMIT + 1), "more_body": False}]
    assert _status_and_body(_call(big, [(b"content-length", str(LIMIT + 1).encode())]))[0] == 413
    small = [{"type": "http.request", "body": b"x" * LIMIT, "more_body": False}]
    assert _status_and_body(_call(small, [(b"content-length", str(LIMIT).encode())])) == (200, b"ok")
