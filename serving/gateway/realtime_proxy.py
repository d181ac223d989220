"""Relaying a ``/v1/realtime`` WebSocket session to a worker, frame by frame in both directions.

The worker does the handshake checks (API key, sample rate) before the gateway accepts the client, so a refused
session is refused the same way. A worker that dies mid-session ends it with an error event (``worker_unavailable``)
and close code 1013 (try again later): the client reconnects, and the restarted worker takes the new session.
"""

from __future__ import annotations

import asyncio
import contextlib

import websockets
from fastapi import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asrforge.serving.gateway.pool import WorkerPool
from asrforge.serving.gateway.worker import WorkerUnavailable

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
ABNORMAL_CLOSURE = 1006
_FORWARDED_HEADERS = ("authorization",)


async def relay_realtime(websocket: WebSocket, pool: WorkerPool) -> None:
    slot = pool.choose()
    try:
        await slot.acquire()
    except WorkerUnavailable as error:
        await _refuse(websocket, str(error))
        return
    try:
        offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        headers = {k: v for k, v in websocket.headers.items() if k.lower() in _FORWARDED_HEADERS}
        query = f"?{websocket.url.query}" if websocket.url.query else ""
        try:
            upstream = await websockets.connect(
                f"{slot.ws_url}/v1/realtime{query}",
                subprotocols=offered or None,  # type: ignore[arg-type]
                additional_headers=headers,
                compression=None,  # PCM does not compress; the single server turns deflate off too
                max_size=None,
                open_timeout=30,
            )
        except InvalidStatus as error:
            # The worker refused the handshake (bad key, bad sample rate): refuse the client the same way.
            await websocket.close(code=POLICY_VIOLATION, reason=f"refused by the server ({error.response.status_code})")
            return
        except OSError as error:
            await _refuse(websocket, str(slot.unavailable(f"went away ({type(error).__name__})")))
            return
        async with upstream:
            await websocket.accept(subprotocol=upstream.subprotocol)
            await _pump(websocket, upstream, slot.index)
    finally:
        slot.release()


async def _pump(websocket: WebSocket, upstream: websockets.ClientConnection, index: int) -> None:
    async def client_to_worker() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            payload = message.get("bytes") if message.get("bytes") is not None else message.get("text")
            if payload is not None:
                await upstream.send(payload)

    async def worker_to_client() -> None:
        async for message in upstream:
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_text(message)

    tasks = [asyncio.create_task(client_to_worker()), asyncio.create_task(worker_to_client())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    finished = done.pop()
    failed = finished.exception() is not None  # also marks a client-side failure as seen
    if finished is tasks[0]:
        return  # the client left (or its socket failed): closing the upstream ends the worker's session
    if not failed and upstream.close_code not in (None, ABNORMAL_CLOSURE):
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=upstream.close_code, reason=upstream.close_reason or "")
        return
    # The worker went away without a closing handshake.
    await _refuse(websocket, f"worker {index} went away mid-session", accepted=True)


async def _refuse(websocket: WebSocket, message: str, accepted: bool = False) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, ConnectionClosed):
        if not accepted:
            await websocket.accept()
        # The realtime protocol's error event (serving/realtime.py), spelled out: that module imports torch.
        await websocket.send_json(
            {"type": "error", "error": {"type": "server_error", "code": "worker_unavailable", "message": message}}
        )
        await websocket.close(code=TRY_AGAIN_LATER)
