"""Upload size limit as ASGI middleware: refuses by Content-Length before reading, and counts chunked bodies.

The body beyond the limit is read and discarded (up to ``DRAIN_FACTOR`` times the limit) before the 413 goes out:
HTTP clients, the ``openai`` one included, send the whole body before reading the response, and a server that
closes early shows them a broken pipe instead of the error.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asrforge.serving import timing

DRAIN_FACTOR = 4


class UploadLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive)
            await self._refuse(send)
            return
        received = 0
        over = False
        body_ended = False

        async def counted_receive() -> Message:
            nonlocal received, over, body_ended
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_ended = not message.get("more_body", False)
                if body_ended:
                    timing.since_start("upload")
                if received > self.max_bytes:
                    over = True
                    # The app sees an aborted upload; the middleware answers instead of it.
                    return {"type": "http.disconnect"}
            return message

        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app says about a cut-off body is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, guarded_send)
        if over and not started:
            # Once the last body message is read, another receive() waits for the client to disconnect, which a
            # client waiting for its response never does: drain only a body that is still arriving.
            if not body_ended:
                await self._drain(receive)
            await self._refuse(send)

    async def _drain(self, receive: Receive) -> None:
        total = 0
        while total <= DRAIN_FACTOR * self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, send: Send) -> None:
        limit_mb = self.max_bytes / (1024 * 1024)
        body = json.dumps(
            {
                "error": {
                    "message": f"Maximum content size limit ({limit_mb:g} MB) exceeded.",
                    "type": "invalid_request_error",
                    "param": "file",
                    "code": "file_too_large",
                }
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
