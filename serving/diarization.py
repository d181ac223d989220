"""Speaker-attributed transcripts on ``/v1/audio/transcriptions`` (OpenAI's ``gpt-4o-transcribe-diarize``):
``response_format=diarized_json``, or SRT/WebVTT with speakers from the diarize model alias; known speakers named by
``known_speaker_names[]`` + ``known_speaker_references[]`` (data URLs of 2-10 s of their voice); SSE streams emit
``transcript.text.segment`` events then ``transcript.text.done``.

The decode, the Silero pass and the diarization run side by side: diarization needs only the audio and the speech
spans, so it runs in a worker thread while the scheduler decodes; the words are then timed and attributed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator, Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.diarization import DiarizationOptions, attribute_speakers, diarize
from asrforge.diarization.options import MAX_KNOWN_SPEAKERS
from asrforge.diarization.render import diarized_segments, render_diarized
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import AsrforgeError
from asrforge.serving.errors import APIError
from asrforge.serving.protocol import DurationUsage, TextDoneEvent, TextSegmentEvent
from asrforge.serving.service import Audio, TranscriptionService
from asrforge.subtitles.alignment import apply_timing, plan_timing
from asrforge.subtitles.timing_fast import unpadded_speech
from asrforge.transcript import Transcript

DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
REFERENCE_SECONDS = (2.0, 10.0)  # as OpenAI asks of each known speaker's sample
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]+)*;base64,(?P<data>.*)$", re.DOTALL)
_REFERENCES = "known_speaker_references"


def wants_diarization(model: str, response_format: str) -> bool:
    """diarized_json always; SRT/WebVTT when the diarize model is asked for (json and text carry no speakers)."""
    return response_format == "diarized_json" or (model == DIARIZE_MODEL and response_format in ("srt", "vtt"))


def check_known_speakers(names: Sequence[str], references: Sequence[str], diarizing: bool) -> None:
    """400 before the upload is decoded: names and references must pair up, at most four, only when diarizing."""
    if not names and not references:
        return
    if not diarizing:
        raise APIError(400, "known_speaker_names[] needs response_format=diarized_json", param="known_speaker_names")
    if len(names) != len(references):
        raise APIError(
            400,
            f"{len(names)} known_speaker_names[] but {len(references)} known_speaker_references[]: "
            "give one reference sample per name",
            param="known_speaker_names" if len(names) > len(references) else _REFERENCES,
        )
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise APIError(400, f"At most {MAX_KNOWN_SPEAKERS} known speakers are supported", param="known_speaker_names")
    if any(not n.strip() for n in names) or len(set(names)) != len(names):
        raise APIError(400, "known_speaker_names[] must be distinct, non-empty names", param="known_speaker_names")


def decode_reference(index: int, url: str) -> np.ndarray:
    """A reference data URL's audio at 16 kHz; 400 when it is not a base64 data URL of 2-10 s of audio."""
    where = f"{_REFERENCES}[{index}]"
    match = _DATA_URL.match(url.strip())
    if not match:
        raise APIError(400, f"{where} must be a data URL such as data:audio/wav;base64,...", param=_REFERENCES)
    mime = match["mime"] or ""
    if mime and not mime.startswith(("audio/", "video/")) and mime != "application/octet-stream":
        raise APIError(400, f"{where} is {mime}, not audio", param=_REFERENCES)
    try:
        data = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{where} is not valid base64", param=_REFERENCES) from None
    try:
        samples = load_audio(data)
    except AsrforgeError as error:
        raise APIError(400, f"{where} is not audio that can be decoded: {error}", param=_REFERENCES) from None
    seconds = samples.size / SAMPLE_RATE
    low, high = REFERENCE_SECONDS
    if not low <= seconds <= high:
        raise APIError(400, f"{where} is {seconds:.1f} s long; it must be {low:g}-{high:g} s", param=_REFERENCES)
    return samples


async def decode_references(names: Sequence[str], urls: Sequence[str]) -> dict[str, np.ndarray]:
    samples = [await run_in_threadpool(decode_reference, i, url) for i, url in enumerate(urls)]
    return dict(zip(names, samples, strict=True))


async def diarized_transcript(
    service: TranscriptionService,
    engine: BaseEngine,
    audio: Audio,
    options: DecodeOptions,
    references: dict[str, np.ndarray],
    diarization: DiarizationOptions = DiarizationOptions(),
) -> Transcript:
    """The transcript with a speaker on every segment, segments split where the speaker changes."""
    plan = plan_timing(engine, options, diarization.timing(service.settings.subtitles))

    async def speakers():
        spans = await service.speech_spans(audio)
        return await run_in_threadpool(diarize, audio.samples, spans, diarization, references)

    transcript, spans, found = await asyncio.gather(
        service.transcribe(audio, plan.options), service.speech_spans(audio), speakers()
    )
    speech = unpadded_speech(spans, service.settings.vad.speech_pad_ms)
    timed, _ = await run_in_threadpool(
        apply_timing, plan, transcript, audio.samples, speech, service.settings.subtitles.qwen3_aligner
    )
    return attribute_speakers(timed, found)


def diarized_body(transcript: Transcript, response_format: str, service: TranscriptionService) -> str:
    return render_diarized(transcript, response_format, service.settings.subtitles.layout)


async def diarized_events(state: State, work: asyncio.Future) -> AsyncIterator[dict]:
    """SSE for ``stream=true`` with diarized_json: one ``transcript.text.segment`` per segment, then done. Speakers
    need the whole recording (clustering), so the segments follow the whole decode."""
    try:
        async with asyncio.timeout(state.settings.limits.request_timeout_s):
            transcript: Transcript = await work
    except (AsrforgeError, TimeoutError) as error:
        message = str(error) or f"the request took longer than {state.settings.limits.request_timeout_s:g} s"
        yield {"data": json.dumps({"type": "error", "error": {"message": message, "type": "server_error"}})}
        return
    finally:
        work.cancel()
    for segment in diarized_segments(transcript):
        yield {"data": TextSegmentEvent(**{k: v for k, v in segment.items() if k != "type"}).model_dump_json()}
    usage = DurationUsage(seconds=round(transcript.duration_s, 3))
    yield {"data": TextDoneEvent(text=transcript.text, usage=usage).model_dump_json()}
