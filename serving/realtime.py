"""One realtime transcription session: PCM16 frames in, VAD-delimited utterances, partial and final transcripts out.

The WebSocket router feeds frames and control messages; this class owns the audio, the streaming VAD and the
order of outgoing events (docs/realtime.md describes the protocol). Audio goes from a frame's bytes to a NumPy
int16 view (``np.frombuffer``, no copy) and is converted once, straight into the session's float32 buffer.

Partial transcripts re-decode the utterance so far and send only the words two consecutive hypotheses agree on
(local agreement, asrforge/agreement.py, as whisper_streaming does), so a delta is never taken back; the final
transcript of an utterance is one decode of all of it.

Where the served engine can stream incrementally (Whisper, Qwen3-ASR: kv_reuse is switched on for realtime
sessions whatever the served plugins, serving/stream_engine.py), partials come from the engine's stream session
instead (``engine.stream_session()``, one per utterance): each partial feeds only the audio since the last one, and
a delta carries the text the session has fixed since the last one (even part of a word), so its cost does not grow
with the utterance. A step on the served model goes through the scheduler (``scheduler.run``, realtime priority), which
stays the model's one owner; with dual_model the steps drive the small model, which the scheduler never touches,
on a thread of its own, so a partial does not wait behind the queue of finals. The final is still the scheduler's
one decode of the whole utterance by the engine's own model, which with dual_model is the big one, replacing the
small model's partials.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import uuid
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from starlette.concurrency import run_in_threadpool

from asrforge.agreement import LocalAgreement
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.engines.stream_session import StreamSession, StreamUpdate
from asrforge.serving.scheduler import InferenceScheduler, Priority, cancel
from asrforge.serving.settings import RealtimeSettings
from asrforge.serving.stream_engine import streaming_engine
from asrforge.vad import SpeechDetector, VADEvent

Event = dict[str, Any]
_PCM16_SCALE = np.float32(1 / 32768)
_KEEP_BEFORE_SPEECH_S = 1.0  # audio kept while silent, so a speech start padded backwards still finds its samples
# dual_model's small model gets one thread per served engine for its stream steps: one stream's steps are sequential
# anyway (one partial in flight), and several sessions' steps queue there instead of contending for its cores.
_PARTIAL_WORKERS: weakref.WeakKeyDictionary[BaseEngine, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


class ProtocolError(ValueError):
    """A client message the session cannot take; sent back as an ``error`` event, the session goes on."""


@dataclass
class _Utterance:
    item_id: str
    start: int  # absolute sample index in the session's stream
    sent: str = ""  # the text of the deltas sent so far (their concatenation)
    stepped: int = 0  # absolute sample index up to which the last partial heard the audio
    agreement: LocalAgreement[str] = field(default_factory=LocalAgreement)  # over the re-decoded partials' words
    partial_in_flight: bool = False
    step: asyncio.Future | None = None  # the stream step in flight, dropped if the utterance ends before it runs
    finished: bool = False
    stream: StreamSession | None = None  # the engine's stream session, where a streaming plugin is served
    fed: int = 0  # absolute sample index up to which ``stream`` has been fed


class AudioBuffer:
    """The session's recent audio as one growing float32 array, addressed by absolute sample index."""

    def __init__(self, capacity: int):
        self._data = np.empty(capacity, dtype=np.float32)
        self.base = 0  # absolute index of _data[0]
        self.length = 0

    @property
    def end(self) -> int:
        return self.base + self.length

    def append_pcm16(self, pcm: np.ndarray) -> np.ndarray:
        """Write int16 samples as float32 into the buffer (the only conversion); returns the written view."""
        return self._write(pcm.size, lambda out: np.multiply(pcm, _PCM16_SCALE, out=out, casting="unsafe"))

    def append_float(self, samples: np.ndarray) -> np.ndarray:
        return self._write(samples.size, lambda out: np.copyto(out, samples))

    def view(self, start: int, end: int) -> np.ndarray:
        return self._data[max(start, self.base) - self.base : min(end, self.end) - self.base]

    def forget_before(self, index: int) -> None:
        drop = min(max(0, index - self.base), self.length)
        if drop:
            # Moves the kept tail to the front: decodes get copies (RealtimeSession._snapshot), never views.
            self._data[: self.length - drop] = self._data[drop : self.length]
            self.base += drop
            self.length -= drop

    def _write(self, size: int, fill: Callable[[np.ndarray], object]) -> np.ndarray:
        if self.length + size > self._data.size:
            grown = np.empty(max(2 * self._data.size, self.length + size), dtype=np.float32)
            grown[: self.length] = self._data[: self.length]
            self._data = grown
        out = self._data[self.length : self.length + size]
        fill(out)
        self.length += size
        return out


class RealtimeSession:
    def __init__(
        self,
        scheduler: InferenceScheduler,
        detector: SpeechDetector,
        settings: RealtimeSettings,
        sample_rate: int,
        send: Callable[[Event], Awaitable[None]],
    ):
        self.scheduler = scheduler
        self.settings = settings
        self.sample_rate = sample_rate
        self.session_id = f"sess_{uuid.uuid4().hex[:20]}"
        self.options = DecodeOptions()
        self._send = send
        self._vad = detector.stream()
        self._resampler = (
            soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32") if sample_rate != SAMPLE_RATE else None
        )
        self._audio = AudioBuffer(int((settings.max_utterance_s + 2 * _KEEP_BEFORE_SPEECH_S) * SAMPLE_RATE))
        self._vad_position = 0  # absolute index up to which the VAD has seen the audio
        self._vad_offset = 0  # absolute index of the VAD's sample 0 (it restarts at 0 after a clear)
        self._tick = int(settings.vad_ms * SAMPLE_RATE / 1000)
        self._partial_gap = int(settings.buffer_ms * SAMPLE_RATE / 1000)
        self._first_gap = int(settings.first_buffer_ms * SAMPLE_RATE / 1000)
        self._utterance: _Utterance | None = None
        self._items = itertools.count(1)
        self._previous_item: str | None = None
        self._outbox: asyncio.Queue[Awaitable[list[Event]] | list[Event]] = asyncio.Queue()
        self._futures: list[asyncio.Future] = []
        self._sender = asyncio.create_task(self._send_in_order())

    # ---- input --------------------------------------------------------------------------------------------
    def created_event(self) -> Event:
        return {
            "type": "transcription_session.created",
            "session": {
                "id": self.session_id,
                "object": "realtime.transcription_session",
                "input_audio_format": "pcm16",
                "sample_rate": self.sample_rate,
                "turn_detection": {
                    "type": "server_vad",
                    "vad_ms": self.settings.vad_ms,
                    "first_buffer_ms": self.settings.first_buffer_ms,
                    "buffer_ms": self.settings.buffer_ms,
                },
                "partials": self.settings.partials,
            },
        }

    async def add_pcm16(self, frame: bytes | bytearray | memoryview) -> None:
        if len(frame) % 2:
            raise ProtocolError(f"a PCM16 frame has an even number of bytes; got {len(frame)}")
        pcm = np.frombuffer(frame, dtype="<i2")  # a view of the frame's bytes
        if self._resampler is None:
            self._audio.append_pcm16(pcm)
        else:
            self._audio.append_float(self._resampler.resample_chunk(pcm.astype(np.float32) * _PCM16_SCALE))
        if self._audio.end - self._vad_position >= self._tick:
            await self._run_vad()

    async def commit(self, client_event_id: str | None = None) -> None:
        """Finish the utterance in progress now (the client's end of input or end of turn). The ``committed``
        event that answers carries ``client_event_id``, so the client can tell it from VAD-made ones."""
        await self._run_vad(final=True)
        if self._utterance is None:
            ack = {"type": "input_audio_buffer.committed", "item_id": None, "client_event_id": client_event_id}
            await self._outbox.put([ack])
        else:
            self._finish(self._audio.end, client_event_id=client_event_id, by_client=True)

    def clear(self) -> None:
        """Drop buffered audio and any utterance in progress (no transcript for it)."""
        if self._utterance is not None:
            self._utterance.finished = True
            self._utterance = None
        self._audio.forget_before(self._audio.end)
        self._vad.reset()
        self._vad_offset = self._vad_position = self._audio.end

    def update(self, session: dict[str, Any]) -> Event:
        language = (session.get("input_audio_transcription") or {}).get("language") or session.get("language")
        prompt = (session.get("input_audio_transcription") or {}).get("prompt") or session.get("prompt")
        self.options = DecodeOptions(language=language or None, prompt=prompt or None)
        engine = self._engine
        engine.check_options(self.options)
        if engine.stream_settings.incremental:
            engine.stream_session(self.options, finals=False)  # refuses options its partial model cannot take
        return {"type": "transcription_session.updated", "session": {**self.created_event()["session"]}}

    async def close(self) -> None:
        """The client is gone: drop queued decodes and stop sending."""
        cancel(self._futures)
        self._sender.cancel()
        await asyncio.gather(self._sender, return_exceptions=True)

    async def drained(self) -> None:
        """Wait until every event queued so far has been sent."""
        await self._outbox.join()

    # ---- VAD and utterances -------------------------------------------------------------------------------
    async def _run_vad(self, final: bool = False) -> None:
        new = self._audio.view(self._vad_position, self._audio.end)
        self._vad_position = self._audio.end
        events: list[VADEvent] = await run_in_threadpool(self._vad.feed, new) if new.size else []
        if final:
            events += self._vad.flush()
        for event in events:
            sample = event.sample + self._vad_offset
            if event.kind == "speech_started" and self._utterance is None:
                self._start(sample)
            elif event.kind == "speech_stopped" and self._utterance is not None:
                self._finish(min(sample, self._audio.end))
        utterance = self._utterance
        if utterance is None:
            self._audio.forget_before(self._audio.end - int(_KEEP_BEFORE_SPEECH_S * SAMPLE_RATE))
            return
        if self._audio.end - utterance.start >= self.settings.max_utterance_s * SAMPLE_RATE:
            end = self._audio.end
            self._finish(end)
            self._start(end)  # speech goes on: a new item continues it
        elif (
            self.settings.partials
            and not utterance.partial_in_flight
            and not final
            and self._partial_due(utterance)
            and self._partial_affordable(utterance)
        ):
            self._partial(utterance)

    def _start(self, sample: int) -> None:
        item_id = f"item_{next(self._items):04d}"
        self._utterance = _Utterance(item_id, max(sample, self._audio.base))
        engine = self._engine
        if engine.stream_settings.incremental:
            self._utterance.stream = engine.stream_session(self.options, finals=False)
            self._utterance.fed = self._utterance.start
        ms = round(self._utterance.start * 1000 / SAMPLE_RATE)
        self._outbox.put_nowait(
            [{"type": "input_audio_buffer.speech_started", "audio_start_ms": ms, "item_id": item_id}]
        )

    def _finish(self, sample: int, client_event_id: str | None = None, by_client: bool = False) -> None:
        utterance, self._utterance = self._utterance, None
        utterance.finished = True
        if utterance.step is not None:
            utterance.step.cancel()  # still queued: its partial would come after the final, and cost engine time
        audio = self._snapshot(utterance.start, sample)
        item_id = utterance.item_id
        stopped = [
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": round(sample * 1000 / SAMPLE_RATE),
                "item_id": item_id,
            },
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": self._previous_item},
        ]
        if by_client:
            stopped[-1]["client_event_id"] = client_event_id
        self._previous_item = item_id
        self._outbox.put_nowait(stopped)
        # A final goes after queued steps that first partials wait on (rank 0): a step costs tens of milliseconds,
        # one per session at most is queued, and the speaker who just started talking waits for it.
        future = self._decode(audio, rank=1)
        self._outbox.put_nowait(self._completed(utterance, future))
        self._audio.forget_before(sample)

    def _partial(self, utterance: _Utterance) -> None:
        utterance.partial_in_flight = True
        utterance.stepped = self._audio.end
        if utterance.stream is None:
            future = self._decode(self._snapshot(utterance.start, self._audio.end))
            self._outbox.put_nowait(self._delta(utterance, future))
            return
        new, utterance.fed = self._snapshot(utterance.fed, self._audio.end), self._audio.end
        step = functools.partial(utterance.stream.feed, new)
        engine = self._engine
        if engine.stream_settings.partial_decoder is None:  # the served model itself: only its executor may run it
            # Until its first delta an utterance's steps go before the other sessions' later ones: under load the
            # first partial, which tells the speaker they are heard, is what a queue of steps delays most.
            rank = 1 if utterance.sent else 0
            future = asyncio.ensure_future(self.scheduler.run(step, Priority.REALTIME, rank))
        else:  # dual_model's small model, which the scheduler never touches: its own thread
            worker = _PARTIAL_WORKERS.get(engine)
            if worker is None:
                worker = _PARTIAL_WORKERS[engine] = ThreadPoolExecutor(1, thread_name_prefix="asrforge-partials")
            future = asyncio.get_running_loop().run_in_executor(worker, step)
        self._futures = [f for f in self._futures if not f.done()] + [future]
        utterance.step = future
        self._outbox.put_nowait(self._stream_delta(utterance, future))

    def _partial_due(self, utterance: _Utterance) -> bool:
        # Until its first delta an utterance gets a partial per ``first_buffer_ms`` of new audio (one in flight at a
        # time): the first words, which tell the speaker they are heard, need two agreeing hypotheses, and the sooner
        # these come the sooner the first delta. After it, one per ``buffer_ms`` is enough for a live caption.
        gap = self._partial_gap if utterance.sent else self._first_gap
        return self._audio.end - utterance.stepped >= gap

    def _partial_affordable(self, utterance: _Utterance) -> bool:
        # A stream step costs the new audio only, so it runs under load too (realtime priority, within its share);
        # after the utterance's first delta, within the share the scheduler allows later partials while decodes wait
        # (dual_model's steps run on the small model's own thread and take nothing from the scheduler).
        # A re-decoding partial costs the whole utterance so far: it only uses idle engine time, since under load it
        # would come after its utterance's final and delay everyone else's work.
        if utterance.stream is None:
            return not self.scheduler.queued
        own_thread = self._engine.stream_settings.partial_decoder is not None
        return own_thread or not utterance.sent or self.scheduler.later_partial_due()

    @property
    def _engine(self) -> BaseEngine:
        return streaming_engine(self.scheduler.engine, self.settings.incremental, self.settings.window_margin_s)

    def _snapshot(self, start: int, end: int) -> np.ndarray:
        # A copy: the buffer shifts its contents when it forgets old audio, while the decode may still be queued.
        return self._audio.view(start, end).copy()

    def _decode(self, audio: np.ndarray, rank: int = 0) -> asyncio.Future:
        (future,) = self.scheduler.submit([audio], self.options, Priority.REALTIME, rank)
        self._futures = [f for f in self._futures if not f.done()] + [future]
        return future

    async def _delta(self, utterance: _Utterance, future: asyncio.Future) -> list[Event]:
        transcript = await future
        utterance.partial_in_flight = False
        if utterance.finished:
            return []  # the final transcript is on its way; a late partial would only repeat it
        return _delta_event(utterance, utterance.agreement.add(transcript.text.split()))

    @staticmethod
    async def _stream_delta(utterance: _Utterance, future: asyncio.Future[StreamUpdate]) -> list[Event]:
        await asyncio.wait([future])  # unlike `await`, does not raise when _finish cancelled the step
        utterance.partial_in_flight = False
        if utterance.finished or future.cancelled():
            return []
        # The session's fixed text is never taken back, only extended, so a delta sends what it gained: as soon as
        # a token is fixed, even one a later token may continue into a longer word (the next delta then starts
        # without a space, as OpenAI's token deltas do). A byte-level token may end inside a character: what
        # follows the last whole character waits for the next update.
        stable = future.result().stable.rstrip("\ufffd")
        if not stable.startswith(utterance.sent):
            return []  # dual_model's final replaced a window's partial text: `completed` carries the new text
        return _text_delta(utterance, stable[len(utterance.sent) :])

    async def _completed(self, utterance: _Utterance, future: asyncio.Future) -> list[Event]:
        transcript = await future
        return [{"type": "conversation.item.input_audio_transcription.completed", "item_id": utterance.item_id,
                 "content_index": 0, "transcript": transcript.text}]  # fmt: skip

    # ---- output -------------------------------------------------------------------------------------------
    async def _send_in_order(self) -> None:
        while True:
            entry = await self._outbox.get()
            try:
                events = await entry if not isinstance(entry, list) else entry
                for event in events:
                    await self._send(event)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a failed decode is reported; the session goes on
                await self._send(error_event(str(error), "decode_failed"))
            finally:
                self._outbox.task_done()


def error_event(message: str, code: str, type: str = "invalid_request_error") -> Event:
    return {"type": "error", "error": {"type": type, "code": code, "message": message}}


def _delta_event(utterance: _Utterance, new: list[str]) -> list[Event]:
    """The delta that sends ``new`` words after those already sent (none if there are none)."""
    if not new:
        return []
    separator = " " if utterance.sent else ""
    return _text_delta(utterance, separator + " ".join(new))


def _text_delta(utterance: _Utterance, delta: str) -> list[Event]:
    """The delta event that appends ``delta`` to the text sent so far (none if it is empty)."""
    if not delta:
        return []
    utterance.sent += delta
    return [{"type": "conversation.item.input_audio_transcription.delta", "item_id": utterance.item_id,
             "content_index": 0, "delta": delta}]  # fmt: skip
