"""From uploaded bytes to a transcript: decode, check limits, cut long audio at silences, decode through the
scheduler, stitch. HTTP responses and SSE streams both go through here, so they transcribe the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from asrforge.audio import load_audio, probe_duration
from asrforge.chunking import Chunk, plan_chunks, stitch
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.serving.errors import APIError
from asrforge.serving.scheduler import InferenceScheduler, Priority, cancel
from asrforge.serving.settings import ServerSettings
from asrforge.transcript import Transcript
from asrforge.vad import SpeechDetector


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray
    # The one VAD pass of this upload (an asyncio task), shared by chunking and subtitle timing.
    vad: dict[str, asyncio.Future] = field(default_factory=dict, compare=False, repr=False)

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


@dataclass
class StreamJob:
    """A file's queued chunks; iterate for each chunk's transcript (times relative to the file), in order."""

    audio: Audio
    chunks: list[Chunk]
    futures: list[asyncio.Future]

    async def __aiter__(self) -> AsyncIterator[Transcript]:
        try:
            for chunk, future in zip(self.chunks, self.futures, strict=True):
                yield stitch([chunk], [await future], self.audio.duration_s, SAMPLE_RATE)
        finally:
            cancel(self.futures)

    def cancel(self) -> None:
        cancel(self.futures)


class TranscriptionService:
    def __init__(self, scheduler: InferenceScheduler, settings: ServerSettings):
        self.scheduler = scheduler
        self.settings = settings
        self.detector = SpeechDetector(settings.vad)

    async def decode(self, data: bytes) -> Audio:
        """Decoded 16 kHz audio; 400 for undecodable bytes, or audio past the duration limit."""
        limit = self.settings.limits.max_duration_s
        # The header's promise first, so an over-long upload is refused before it is decoded.
        declared = await run_in_threadpool(probe_duration, data)
        if declared is not None and declared > limit:
            raise _too_long(declared, limit)
        samples = await run_in_threadpool(load_audio, data)
        audio = Audio(samples)
        if audio.duration_s > limit:
            raise _too_long(audio.duration_s, limit)
        return audio

    async def chunks(self, audio: Audio, engine: BaseEngine, streaming: bool = False) -> list[Chunk]:
        """The pieces to decode: the whole clip when it fits the chunk length, else speech cut at silences."""
        window = self.settings.chunking.max_chunk_s or engine.capabilities.window_s
        max_chunk_s = min(window, self.settings.chunking.stream_max_chunk_s) if streaming else window
        if audio.duration_s <= max_chunk_s:
            return [Chunk(0, audio.samples.size)]
        spans = await self.speech_spans(audio)
        return plan_chunks(spans, audio.samples.size, max_chunk_s, SAMPLE_RATE, audio=audio.samples)

    async def speech_spans(self, audio: Audio) -> list[tuple[int, int]]:
        """Silero's speech spans of ``audio`` (padded by ``vad.speech_pad_ms``), computed once per upload."""
        if "spans" not in audio.vad:
            audio.vad["spans"] = asyncio.ensure_future(run_in_threadpool(self.detector.speech_spans, audio.samples))
        return await asyncio.shield(audio.vad["spans"])

    async def transcribe(self, audio: Audio, options: DecodeOptions) -> Transcript:
        engine = await self.scheduler.wait_ready()
        chunks = await self.chunks(audio, engine)
        pieces = [chunk.audio(audio.samples) for chunk in chunks]
        transcripts = await self.scheduler.transcribe(pieces, options, Priority.BATCH) if pieces else []
        return _whole(chunks, transcripts, audio)

    async def start_stream(self, audio: Audio, options: DecodeOptions) -> StreamJob:
        """Queue every chunk now (so a full queue is a 429, not an error event mid-stream)."""
        engine = await self.scheduler.wait_ready()
        chunks = await self.chunks(audio, engine, streaming=True)
        futures = self.scheduler.submit([c.audio(audio.samples) for c in chunks], options, Priority.STREAM)
        return StreamJob(audio, chunks, futures)

    async def with_timeout(self, work: asyncio.Future | object) -> object:
        try:
            async with asyncio.timeout(self.settings.limits.request_timeout_s):
                return await work
        except TimeoutError:
            raise APIError(
                504, f"The request took longer than {self.settings.limits.request_timeout_s:g} s.", code="timeout"
            ) from None


def _whole(chunks: list[Chunk], transcripts: list[Transcript], audio: Audio) -> Transcript:
    if len(chunks) == 1 and chunks[0] == Chunk(0, audio.samples.size):
        return transcripts[0]  # one piece, the whole file: the engine's own transcript, untouched
    return stitch(chunks, transcripts, audio.duration_s, SAMPLE_RATE)


def _too_long(seconds: float, limit: float) -> APIError:
    return APIError(
        400,
        f"Audio is {seconds:.1f} s long; this server accepts at most {limit:g} s.",
        param="file",
        code="audio_too_long",
    )
