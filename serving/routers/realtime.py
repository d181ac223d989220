"""``/v1/realtime``: WebSocket realtime transcription (protocol in docs/realtime.md)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from asrforge.errors import AsrforgeError
from asrforge.serving.auth import INSECURE_KEY_PROTOCOL, key_is_valid, websocket_key
from asrforge.serving.realtime import ProtocolError, RealtimeSession, error_event
from asrforge.serving.scheduler import NotReadyError, QueueFullError

router = APIRouter(tags=["realtime"])

POLICY_VIOLATION = 1008
MIN_RATE, MAX_RATE = 8_000, 48_000


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket, sample_rate: int | None = None) -> None:
    state = websocket.app.state
    settings = state.settings
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if settings.api_keys and not key_is_valid(websocket_key(websocket.headers, offered), settings.api_keys):
        await websocket.close(code=POLICY_VIOLATION, reason="missing or invalid API key")
        return
    rate = sample_rate or settings.realtime.sample_rate
    if not MIN_RATE <= rate <= MAX_RATE:
        await websocket.close(code=POLICY_VIOLATION, reason=f"sample_rate must be {MIN_RATE}-{MAX_RATE} Hz")
        return
    subprotocol = next((p for p in offered if not p.startswith(INSECURE_KEY_PROTOCOL)), None)
    await websocket.accept(subprotocol=subprotocol)
    try:
        await state.scheduler.wait_ready()
    except NotReadyError as error:
        await websocket.send_json(error_event(str(error), "model_not_ready", "server_error"))
        await websocket.close()
        return

    session = RealtimeSession(state.scheduler, state.service.detector, settings.realtime, rate, websocket.send_json)
    state.metrics.realtime_sessions.inc()
    try:
        await websocket.send_json(session.created_event())
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            try:
                if message.get("bytes") is not None:
                    await session.add_pcm16(message["bytes"])
                elif message.get("text") is not None:
                    reply = await _control(session, message["text"])
                    if reply:
                        await session.drained()
                        await websocket.send_json(reply)
            except (ProtocolError, AsrforgeError) as error:
                code = "queue_full" if isinstance(error, QueueFullError) else "invalid_request"
                await websocket.send_json(error_event(str(error), code))
    except WebSocketDisconnect:
        pass
    finally:
        state.metrics.realtime_sessions.dec()
        await session.close()


async def _control(session: RealtimeSession, text: str) -> dict[str, Any] | None:
    """Apply one JSON client event; returns a direct reply, if the event has one."""
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"a text message must be a JSON event: {error}") from None
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "input_audio_buffer.append":
        try:
            await session.add_pcm16(base64.b64decode(event.get("audio", ""), validate=True))
        except (binascii.Error, TypeError):
            raise ProtocolError("input_audio_buffer.append needs base64 PCM16 in 'audio'") from None
        return None
    if kind == "input_audio_buffer.commit":
        await session.commit(event.get("event_id"))
        return None
    if kind == "input_audio_buffer.clear":
        session.clear()
        return {"type": "input_audio_buffer.cleared"}
    if kind in ("transcription_session.update", "session.update"):
        return session.update(event.get("session") or {})
    raise ProtocolError(
        f"unknown event type {kind!r}; expected input_audio_buffer.append/commit/clear or transcription_session.update"
    )
