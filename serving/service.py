"""From uploaded bytes to a transcript: decode, check limits, then the core pipeline (asrforge/pipeline.py: cut long
audio at silences, stitch) around a decode through the scheduler, which batches across requests. HTTP responses and
SSE streams both go through here, and the CLI and the harness through the same pipeline, so all transcribe alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from asrforge.audio import is_plain_wav, load_audio, probe_duration
from asrforge.chunking import Chunk, stitch
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.pipeline import Pipeline, Plan
from asrforge.serving import timing
from asrforge.serving.errors import APIError
from asrforge.serving.scheduler import InferenceScheduler, Priority, cancel
from asrforge.serving.settings import ServerSettings
from asrforge.transcript import Transcript
from asrforge.vad import SpeechDetector

# A 16 kHz 16-bit PCM WAV upload up to this size (32 s) is decoded on the event loop: the standard library reads it in
# ~0.3 ms, less than the two thread wake-ups of a hop to the thread pool on a busy machine. Anything larger, resampled
# or in another format (an 8-bit WAV of 1 MiB takes FFmpeg 130 ms) is decoded in the thread pool: the loop never
# stalls on it.
INLINE_DECODE_BYTES = 1 << 20


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
        with timing.timed("decode"):
            return await self._decode(data)

    async def _decode(self, data: bytes) -> Audio:
        if len(data) <= INLINE_DECODE_BYTES and is_plain_wav(data):
            return self._checked_decode(data)
        return await run_in_threadpool(self._checked_decode, data)

    def _checked_decode(self, data: bytes) -> Audio:
        limit = self.settings.limits.max_duration_s
        # The header's promise first, so an over-long upload is refused before it is decoded.
        declared = probe_duration(data)
        if declared is not None and declared > limit:
            raise _too_long(declared, limit)
        audio = Audio(load_audio(data))
        if audio.duration_s > limit:
            raise _too_long(audio.duration_s, limit)
        return audio

    def pipeline(self, engine: BaseEngine) -> Pipeline:
        return Pipeline(engine, self.settings.vad, self.settings.chunking.max_chunk_s, detector=self.detector)

    async def plan(self, audio: Audio, engine: BaseEngine, streaming: bool = False) -> Plan:
        """The pipeline's plan: the whole clip when it fits the chunk length, else speech cut at silences."""
        pipeline = self.pipeline(engine)
        max_chunk_s = pipeline.max_chunk_s
        if streaming:
            max_chunk_s = min(max_chunk_s, self.settings.chunking.stream_max_chunk_s)
        spans = await self.speech_spans(audio) if pipeline.needs_vad(audio.samples, max_chunk_s) else None
        return pipeline.plan(audio.samples, spans, max_chunk_s)

    async def chunks(self, audio: Audio, engine: BaseEngine, streaming: bool = False) -> list[Chunk]:
        """The pieces to decode (see ``plan``)."""
        return (await self.plan(audio, engine, streaming)).chunks

    async def speech_spans(self, audio: Audio) -> list[tuple[int, int]]:
        """Silero's speech spans of ``audio`` (padded by ``vad.speech_pad_ms``), computed once per upload."""
        if "spans" not in audio.vad:
            audio.vad["spans"] = asyncio.ensure_future(run_in_threadpool(self.detector.speech_spans, audio.samples))
        return await asyncio.shield(audio.vad["spans"])

    async def transcribe(self, audio: Audio, options: DecodeOptions) -> Transcript:
        engine = await self.scheduler.wait_ready()
        with timing.timed("plan"):
            plan = await self.plan(audio, engine)
            pieces = plan.pieces()
        transcripts = await self.scheduler.transcribe(pieces, options, Priority.BATCH) if pieces else []
        return plan.join(transcripts)

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


def _too_long(seconds: float, limit: float) -> APIError:
    return APIError(
        400,
        f"Audio is {seconds:.1f} s long; this server accepts at most {limit:g} s.",
        param="file",
        code="audio_too_long",
    )
