"""Subtitle formats and word timestamps on the HTTP endpoints: decode with the timing the settings ask for, run VAD
beside the decode (its spans are shared with chunking), time the words, render SRT/WebVTT cues or verbose_json."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.serving.service import Audio, TranscriptionService
from asrforge.subtitles.alignment import apply_timing, plan_timing
from asrforge.subtitles.render import SUBTITLE_FORMATS, render_timed
from asrforge.subtitles.timing_fast import unpadded_speech


def wants_timing(response_format: str, options: DecodeOptions) -> bool:
    """SRT/WebVTT always lay out timed words; verbose_json only with ``timestamp_granularities[]=word``."""
    return response_format in SUBTITLE_FORMATS or options.word_timestamps


async def timed_body(
    service: TranscriptionService,
    engine: BaseEngine,
    audio: Audio,
    options: DecodeOptions,
    response_format: str,
    task: str | None = None,
) -> str:
    """The response body of a request that needs word times, timed per ``serving.subtitles``."""
    subtitles = service.settings.subtitles
    plan = plan_timing(engine, options, subtitles)
    # VAD runs in a worker thread while the scheduler decodes; for audio longer than a chunk it is the same pass
    # the chunking needs anyway.
    transcript, spans = await asyncio.gather(service.transcribe(audio, plan.options), service.speech_spans(audio))
    speech = unpadded_speech(spans, service.settings.vad.speech_pad_ms)
    timed, alignment = await run_in_threadpool(
        apply_timing, plan, transcript, audio.samples, speech, subtitles.qwen3_aligner
    )
    return render_timed(timed, alignment, response_format, task or options.task, subtitles.layout)
