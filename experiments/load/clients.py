"""The load test's clients: one request of each kind against the server, timed and classified.

``http`` is a plain transcription through the official ``openai`` client, ``sse`` the same with ``stream=True``
(time to the first delta and to ``transcript.text.done``), ``ws`` a realtime session with the ``websockets`` library:
the file's 16 kHz PCM16 in binary frames, paced at ``speed`` times real time, then ``input_audio_buffer.commit``
with an ``event_id``, read until the final transcript as docs/realtime.md says. A 429 is honoured (its Retry-After
slept) and retried, and counted apart from failures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openai
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE

KINDS = ("http", "sse", "ws")
MODEL = "whisper-1"  # an alias every OpenAI client sends; the server maps it to the model it serves
MAX_RETRY_AFTER_S = 30.0
COMMIT_ID = "end"  # the event_id of the closing commit: the server's answer to it carries it as client_event_id


@dataclass(frozen=True)
class Clip:
    name: str
    data: bytes  # the file's bytes, uploaded as they are
    pcm16: bytes  # 16 kHz mono PCM16 little-endian, for the WebSocket
    duration_s: float

    @classmethod
    def from_path(cls, path: Path) -> Clip:
        samples = load_audio(path)
        pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
        return cls(path.name, path.read_bytes(), pcm.tobytes(), samples.size / SAMPLE_RATE)


@dataclass
class Outcome:
    """One request: ``status`` is ok (answered), 4xx, 5xx, error (an error event from the server) or lost."""

    kind: str
    clip: str
    audio_s: float
    started: float  # perf_counter at the first attempt
    status: str = "lost"
    latency_s: float | None = None  # http/sse: to the whole answer; ws: commit sent -> last final transcript
    admitted_s: float | None = None  # http/sse: from the attempt the server admitted (no 429) to the whole answer
    first_delta_s: float | None = None  # sse and ws: from the start to the first delta
    deltas: int = 0  # sse and ws: delta events received
    text: str | None = None
    consistent: bool = True  # sse: the deltas add up to the done text
    retries_429: int = 0
    http_status: int | None = None
    detail: str | None = None
    finished: float | None = None  # perf_counter when the answer (or the failure) came

    def close(self, status: str, detail: str | None = None, http_status: int | None = None) -> Outcome:
        self.status, self.detail, self.http_status, self.finished = status, detail, http_status, time.perf_counter()
        return self


class Target:
    """A running server: its base URL, and one shared ``openai`` client (its own retries off: we count 429s)."""

    def __init__(self, base_url: str, api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url[len("http") :] + "/v1/realtime"
        self.api_key = api_key
        self.client = openai.AsyncOpenAI(base_url=self.base_url + "/v1", api_key=api_key or "unused", max_retries=0)

    async def aclose(self) -> None:
        await self.client.close()


Request = Callable[[Target, Clip, float], Awaitable[Outcome]]


async def http_request(target: Target, clip: Clip, deadline: float) -> Outcome:
    async def attempt(outcome: Outcome) -> None:
        result = await target.client.audio.transcriptions.create(model=MODEL, file=(clip.name, clip.data))
        outcome.text = result.text

    return await _openai_request("http", target, clip, deadline, attempt)


async def sse_request(target: Target, clip: Clip, deadline: float) -> Outcome:
    async def attempt(outcome: Outcome) -> None:
        stream = await target.client.audio.transcriptions.create(model=MODEL, file=(clip.name, clip.data), stream=True)
        deltas: list[str] = []
        async for event in stream:
            if event.type == "transcript.text.delta":
                if outcome.first_delta_s is None:
                    outcome.first_delta_s = time.perf_counter() - outcome.started
                outcome.deltas += 1
                deltas.append(event.delta)
            elif event.type == "transcript.text.done":
                outcome.text = event.text
        if outcome.text is not None:
            outcome.consistent = "".join(deltas) == outcome.text

    return await _openai_request("sse", target, clip, deadline, attempt)


async def _openai_request(
    kind: str, target: Target, clip: Clip, deadline: float, attempt: Callable[[Outcome], Awaitable[None]]
) -> Outcome:
    outcome = Outcome(kind, clip.name, clip.duration_s, time.perf_counter())
    while True:
        attempt_started = time.perf_counter()
        left = deadline - attempt_started
        if left <= 0:
            return outcome.close("lost", "no answer before the deadline")
        try:
            await asyncio.wait_for(attempt(outcome), left)
        except openai.RateLimitError as error:
            outcome.retries_429 += 1
            await asyncio.sleep(min(_retry_after(error.response.headers), max(0.0, deadline - time.perf_counter())))
            continue
        except openai.APIStatusError as error:
            return outcome.close("5xx" if error.status_code >= 500 else "4xx", _first_line(error), error.status_code)
        except (openai.APIConnectionError, TimeoutError) as error:
            return outcome.close("lost", _first_line(error) or "timed out")
        except openai.APIError as error:  # an error event inside the SSE stream
            return outcome.close("error", _first_line(error))
        if outcome.text is None:
            return outcome.close("lost", "the stream ended without transcript.text.done")
        answered = time.perf_counter()
        outcome.latency_s, outcome.admitted_s = answered - outcome.started, answered - attempt_started
        return outcome.close("ok")


def ws_request(speed: float, frame_ms: int = 100) -> Request:
    """A realtime session sending ``frame_ms`` frames at ``speed`` times real time (0: as fast as possible)."""

    async def request(target: Target, clip: Clip, deadline: float) -> Outcome:
        outcome = Outcome("ws", clip.name, clip.duration_s, time.perf_counter())
        try:
            await asyncio.wait_for(_ws_session(target, clip, outcome, speed, frame_ms), deadline - outcome.started)
        except TimeoutError:
            return outcome.close("lost", "no final transcript before the deadline")
        except InvalidStatus as error:
            code = error.response.status_code
            return outcome.close("5xx" if code >= 500 else "4xx", f"handshake refused: {code}", code)
        except ConnectionClosed as error:
            code = error.rcvd.code if error.rcvd else None
            status = "5xx" if code == 1011 else "lost"  # 1011: the server hit an unexpected condition
            return outcome.close(status, f"closed with code {code} before the final transcript")
        except OSError as error:
            return outcome.close("lost", _first_line(error))
        return outcome

    return request


async def _ws_session(target: Target, clip: Clip, outcome: Outcome, speed: float, frame_ms: int) -> None:
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
    frame_bytes = 2 * SAMPLE_RATE * frame_ms // 1000
    interval = frame_ms / 1000 / speed if speed > 0 else 0.0
    async with websockets.connect(target.ws_url, compression=None, max_size=None, additional_headers=headers) as ws:
        created = json.loads(await ws.recv())
        if created.get("type") != "transcription_session.created":
            outcome.close("error", f"first event {created.get('type')!r}, not transcription_session.created")
            return
        committed_at: list[float] = []

        async def send_audio() -> None:
            audio = memoryview(clip.pcm16)
            begin = time.perf_counter()
            for index, offset in enumerate(range(0, len(audio), frame_bytes)):
                if interval:
                    await asyncio.sleep(max(0.0, begin + index * interval - time.perf_counter()))
                await ws.send(audio[offset : offset + frame_bytes])
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": COMMIT_ID}))
            committed_at.append(time.perf_counter())

        sender = asyncio.create_task(send_audio())
        try:
            transcripts, errors = await _read_until_final(ws, outcome)
            answered_at = time.perf_counter()  # before the closing handshake
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    if transcripts is None:
        outcome.close("lost", "the session closed before its final transcript")
    elif errors:
        outcome.close("error", "; ".join(errors[:3]))
    else:
        outcome.text = " ".join(text for text in transcripts if text)
        outcome.latency_s = answered_at - committed_at[0]
        outcome.close("ok")


async def _read_until_final(ws: websockets.ClientConnection, outcome: Outcome) -> tuple[list[str] | None, list[str]]:
    """The completed transcripts, in order, up to the end of input: the ``committed`` event that answers our commit
    (``client_event_id``), then, unless its ``item_id`` is null (nothing was open), that item's ``completed``.
    ``None`` when the session closes first."""
    transcripts: list[str] = []
    errors: list[str] = []
    final_item: str | None = None
    async for message in ws:
        event = json.loads(message)
        kind = event.get("type")
        if kind == "conversation.item.input_audio_transcription.delta":
            outcome.deltas += 1
            if outcome.first_delta_s is None:
                outcome.first_delta_s = time.perf_counter() - outcome.started
        elif kind == "input_audio_buffer.committed" and event.get("client_event_id") == COMMIT_ID:
            if event.get("item_id") is None:
                return transcripts, errors
            final_item = event["item_id"]
        elif kind == "conversation.item.input_audio_transcription.completed":
            transcripts.append(event["transcript"])
            if event["item_id"] == final_item:
                return transcripts, errors
        elif kind == "error":
            error = event.get("error") or {}
            errors.append(f"{error.get('code')}: {error.get('message')}")
    return None, errors


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def requests(speed: float, frame_ms: int = 100) -> dict[str, Request]:
    """One request function per kind."""
    return {"http": http_request, "sse": sse_request, "ws": ws_request(speed, frame_ms)}
