"""Forwarding one HTTP request to a worker: the body as received, the answer as the worker gives it.

A plain answer is read whole before the gateway replies, so a worker that dies at any point before its last byte
turns into a 503 with Retry-After for this caller only. A server-sent-event stream is relayed event by event (its
200 is already on the wire), so a worker dying mid-stream ends it with an OpenAI error event, as the single server
does for any failure after a stream has started.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from asrforge.serving.errors import APIError
from asrforge.serving.gateway.pool import WorkerPool
from asrforge.serving.gateway.worker import WorkerSlot, WorkerUnavailable

# Hop-by-hop headers (RFC 9110 section 7.6.1) and those httpx/Starlette set themselves.
_DROP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
     "content-length", "content-encoding"}
)  # fmt: skip


def unavailable_error(error: WorkerUnavailable, retry_after_s: int) -> APIError:
    """The caller's answer when its worker went away: OpenAI's error JSON, 503, and when to try again."""
    return APIError(
        503,
        f"{error}; retry after {retry_after_s} s",
        type="server_error",
        code="worker_unavailable",
        headers={"Retry-After": str(retry_after_s)},
    )


def _timed_out(seconds: float) -> APIError:
    return APIError(504, f"the worker did not answer within {seconds:g} s", code="timeout")


def sse_error_event(message: str) -> bytes:
    body = {"type": "error", "error": {"message": message, "type": "server_error", "code": "worker_unavailable"}}
    return f"data: {json.dumps(body)}\n\n".encode()


async def forward_http(request: Request, pool: WorkerPool, retry_after_s: int) -> Response:
    body = await request.body()
    slot = pool.choose()
    try:
        client = await slot.acquire()
    except WorkerUnavailable as error:
        raise unavailable_error(error, retry_after_s) from None
    streaming = False
    try:
        upstream_request = client.build_request(
            request.method,
            request.url.path,
            params=request.query_params,
            headers=_forwarded(request.headers.items()),
            content=body,
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            raise _timed_out(slot.answer_timeout_s) from None
        except httpx.TransportError as error:
            raise slot.unavailable(f"went away before answering ({type(error).__name__})") from error
        headers = _forwarded(upstream.headers.items())
        if upstream.headers.get("content-type", "").startswith("text/event-stream"):
            streaming = True
            return StreamingResponse(_relay_events(upstream, slot), status_code=upstream.status_code, headers=headers)
        try:
            content = await upstream.aread()
        except (httpx.ReadTimeout, httpx.WriteTimeout):
            raise _timed_out(slot.answer_timeout_s) from None
        except httpx.TransportError as error:
            raise slot.unavailable(f"went away while answering ({type(error).__name__})") from error
        finally:
            await upstream.aclose()
        return Response(content, status_code=upstream.status_code, headers=headers)
    except WorkerUnavailable as error:
        raise unavailable_error(error, retry_after_s) from None
    finally:
        if not streaming:
            slot.release()


async def _relay_events(upstream: httpx.Response, slot: WorkerSlot) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.TransportError as error:
        yield sse_error_event(str(slot.unavailable(f"went away mid-stream ({type(error).__name__})")))
    finally:
        await upstream.aclose()
        slot.release()


def _forwarded(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name: value for name, value in headers if name.lower() not in _DROP}
