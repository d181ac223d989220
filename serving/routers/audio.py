"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``, as OpenAI defines them (multipart form)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from sse_starlette import EventSourceResponse
from starlette.datastructures import State

from asrforge.chunking import word_separator
from asrforge.decoding import with_policy
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import AsrforgeError
from asrforge.formats import MEDIA_TYPES, ResponseFormat, render
from asrforge.serving import timing
from asrforge.serving.auth import require_api_key
from asrforge.serving.diarization import (
    MAX_KNOWN_SPEAKERS,
    check_known_speakers,
    decode_references,
    diarized_body,
    diarized_events,
    diarized_transcript,
    wants_diarization,
)
from asrforge.serving.errors import APIError, error_responses
from asrforge.serving.protocol import TRANSCRIPTION_RESPONSES, DurationUsage, TextDeltaEvent, TextDoneEvent
from asrforge.serving.service import Audio, StreamJob, TranscriptionService
from asrforge.serving.subtitles import timed_body, wants_timing
from asrforge.serving.translation import (
    TRANSLATION_ERRORS,
    TargetLanguageField,
    TextTranslation,
    plan_request,
    translated_body,
)

router = APIRouter(prefix="/v1/audio", tags=["audio"], dependencies=[Depends(require_api_key)])

TRANSCRIPTION_FIELDS = frozenset(
    {"file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]",
     "timestamp_granularities", "stream", "chunking_strategy", "beam_size", "known_speaker_names[]",
     "known_speaker_names", "known_speaker_references[]", "known_speaker_references"}
)  # fmt: skip
TRANSLATION_FIELDS = frozenset(
    {"file", "model", "language", "prompt", "response_format", "temperature",
     "timestamp_granularities[]", "timestamp_granularities", "beam_size"}
)  # fmt: skip
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
ERRORS = error_responses(400, 401, 404, 413, 429, 503, 504)

FileField = Annotated[
    UploadFile, File(description="Audio in any format FFmpeg reads: flac, mp3, mp4, m4a, ogg/opus, wav, webm, ...")
]
ModelField = Annotated[str, Form(description="The served model's id, or an alias such as whisper-1 (GET /v1/models)")]
PromptField = Annotated[str | None, Form(description="Text to guide the model's style or continue earlier audio")]
FormatField = Annotated[ResponseFormat, Form(description="json, text, srt, verbose_json or vtt")]
TranscriptionFormatField = Annotated[
    Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"],
    Form(description="json, text, srt, verbose_json, vtt, or diarized_json (who spoke when: speaker segments)"),
]
KnownNamesField = Annotated[
    list[str] | None,
    Form(
        alias="known_speaker_names[]",
        description=f"With diarized_json: up to {MAX_KNOWN_SPEAKERS} names of speakers, one per reference sample",
    ),
]
KnownReferencesField = Annotated[
    list[str] | None,
    Form(
        alias="known_speaker_references[]",
        description="Data URLs (data:audio/wav;base64,...) of 2-10 s of each named speaker's voice",
    ),
]
TemperatureField = Annotated[
    float | None,
    Form(
        ge=0,
        le=1,
        description="As OpenAI: 0 (the default) lets the server raise the temperature while a window fails its "
        "compression-ratio / log-prob thresholds (the server's decoding policy, conf/serving `decode`); "
        "a value > 0 samples at that one temperature",
    ),
]
BeamSizeField = Annotated[
    int | None,
    Form(
        ge=1,
        le=16,
        description="asrforge extra (not in OpenAI's API): beams at temperature 0; 1 = greedy. Default: the server's "
        "decoding policy (5, faster-whisper's default)",
    ),
]
GranularitiesField = Annotated[
    list[Literal["word", "segment"]] | None,
    Form(alias="timestamp_granularities[]", description="segment and/or word (word needs verbose_json)"),
]


@router.post(
    "/transcriptions",
    summary="Transcribe audio",
    response_model=None,
    responses={**TRANSCRIPTION_RESPONSES, **ERRORS},
)
async def create_transcription(
    request: Request,
    file: FileField,
    model: ModelField,
    language: Annotated[str | None, Form(description="ISO-639-1 code of the speech; default: detected")] = None,
    prompt: PromptField = None,
    response_format: TranscriptionFormatField = "json",
    temperature: TemperatureField = None,
    timestamp_granularities: GranularitiesField = None,
    beam_size: BeamSizeField = None,
    stream: Annotated[bool, Form(description="Server-sent events: a delta per finished chunk, then done")] = False,
    chunking_strategy: Annotated[
        str | None,
        Form(
            description='"auto" (the default; OpenAI requires it for gpt-4o-transcribe-diarize) or a server_vad '
            "object; the server always cuts long audio at silences"
        ),
    ] = None,
    known_speaker_names: KnownNamesField = None,
    known_speaker_references: KnownReferencesField = None,
) -> Response:
    timing.since_start("parse")
    await _reject_unknown_fields(request, TRANSCRIPTION_FIELDS)
    granularities = _granularities(timestamp_granularities, response_format)
    _check_chunking_strategy(chunking_strategy)
    words = "word" in granularities
    options = DecodeOptions(language=_language(language), prompt=prompt or None, word_timestamps=words)
    policy = _policy(temperature, beam_size)
    names, references = known_speaker_names or [], known_speaker_references or []
    diarizing = wants_diarization(model, response_format)
    check_known_speakers(names, references, diarizing)
    if diarizing:  # who spoke when: serving/diarization.py
        speakers = (names, references)
        return await _respond_diarized(request, file, model, options, response_format, stream, policy, speakers)
    return await _respond(request, file, model, options, response_format, stream, policy)


@router.post(
    "/translations",
    summary="Translate audio into English or Chinese text",
    response_model=None,
    responses={**TRANSCRIPTION_RESPONSES, **ERRORS, **TRANSLATION_ERRORS},
)
async def create_translation(
    request: Request,
    file: FileField,
    model: ModelField,
    prompt: PromptField = None,
    response_format: FormatField = "json",
    temperature: TemperatureField = None,
    timestamp_granularities: GranularitiesField = None,
    beam_size: BeamSizeField = None,
    target_language: TargetLanguageField = "en",
    language: Annotated[
        str | None,
        Form(
            description="ISO-639-1 code of the speech (not in OpenAI's API; optional). An English-only model takes "
            "speech as English (its translation is the transcript) unless this names another language, which it "
            "refuses with a 400 naming a model that can translate."
        ),
    ] = None,
) -> Response:
    timing.since_start("parse")
    await _reject_unknown_fields(request, TRANSLATION_FIELDS | {"target_language"})
    words = "word" in _granularities(timestamp_granularities, response_format)
    options = DecodeOptions(
        task="translate", language=_language(language), prompt=prompt or None, word_timestamps=words
    )
    options, translate_to = await plan_request(request.app.state, target_language, options)
    policy = _policy(temperature, beam_size)
    return await _respond(request, file, model, options, response_format, False, policy, translate_to, task="translate")


async def _respond(
    request: Request,
    file: UploadFile,
    model: str,
    options: DecodeOptions,
    response_format: str,
    stream: bool,
    policy: dict[str, Any],
    translate_to: TextTranslation | None = None,
    task: str | None = None,  # what the response says it did; an English-only model "translates" by transcribing
) -> Response:
    state = request.app.state
    service, engine, options, audio = await _admit(request, file, model, options, policy)
    if stream:
        job = await service.start_stream(audio, options)
        return EventSourceResponse(_events(state, job), ping=15, send_timeout=30)
    if translate_to:  # transcription, then text translation keeping each segment's timing: serving/translation.py
        body = await service.with_timeout(translated_body(service, audio, options, translate_to, response_format))
        return Response(body, media_type=MEDIA_TYPES[response_format])
    if wants_timing(response_format, options):  # SRT/WebVTT cues and word timestamps: serving/subtitles.py
        body = await service.with_timeout(timed_body(service, engine, audio, options, response_format, task))
        return Response(body, media_type=MEDIA_TYPES[response_format])
    transcript = await service.with_timeout(service.transcribe(audio, options))
    with timing.timed("render"):
        body = render(transcript, response_format, task=task or options.task)
        return Response(body, media_type=MEDIA_TYPES[response_format])


async def _respond_diarized(
    request: Request,
    file: UploadFile,
    model: str,
    options: DecodeOptions,
    response_format: str,
    stream: bool,
    policy: dict[str, Any],
    speakers: tuple[list[str], list[str]],
) -> Response:
    state = request.app.state
    service, engine, options, audio = await _admit(request, file, model, options, policy)
    known = await decode_references(*speakers)
    work = asyncio.ensure_future(diarized_transcript(service, engine, audio, options, known))
    if stream:
        return EventSourceResponse(diarized_events(state, work), ping=15, send_timeout=30)
    transcript = await service.with_timeout(work)
    return Response(diarized_body(transcript, response_format, service), media_type=MEDIA_TYPES[response_format])


async def _admit(
    request: Request, file: UploadFile, model: str, options: DecodeOptions, policy: dict[str, Any]
) -> tuple[TranscriptionService, BaseEngine, DecodeOptions, Audio]:
    """What every audio request does first: wait for the engine, check the model, settle the decoding policy
    (refusing what the engine cannot do) and decode the upload."""
    state = request.app.state
    service: TranscriptionService = state.service
    engine = await service.with_timeout(service.scheduler.wait_ready())
    _check_model(model, state.served_models)
    options, _ = with_policy(engine, state.settings.decode, options, policy)
    audio = await service.decode(await file.read())
    return service, engine, options, audio


async def _events(state: State, job: StreamJob) -> AsyncIterator[dict]:
    """SSE data lines as OpenAI sends them: a delta per finished chunk, then done with the whole text. A failure
    after the stream started becomes an OpenAI error event (the ``openai`` client raises it as ``APIError``)."""
    texts: list[str] = []
    try:
        async with asyncio.timeout(state.settings.limits.request_timeout_s):
            async for piece in job:
                if piece.text:
                    separator = word_separator(piece.language) if texts else ""
                    yield {"data": TextDeltaEvent(delta=separator + piece.text).model_dump_json()}
                    texts.append(separator + piece.text)
    except (AsrforgeError, TimeoutError) as error:
        message = str(error) or f"the request took longer than {state.settings.limits.request_timeout_s:g} s"
        yield {"data": json.dumps({"type": "error", "error": {"message": message, "type": "server_error"}})}
        return
    finally:
        job.cancel()
    usage = DurationUsage(seconds=round(job.audio.duration_s, 3))
    yield {"data": TextDoneEvent(text="".join(texts), usage=usage).model_dump_json()}


async def _reject_unknown_fields(request: Request, known: frozenset[str]) -> None:
    form = await request.form()  # already parsed (and cached) by FastAPI for the declared fields
    unknown = sorted(set(form.keys()) - known)
    if unknown:
        raise APIError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])


def _check_model(model: str, served: frozenset[str]) -> None:
    if model not in served:
        raise APIError(
            404,
            f"The model '{model}' does not exist or is not served here (served: {', '.join(sorted(served))}).",
            param="model",
            code="model_not_found",
        )


def _policy(temperature: float | None, beam_size: int | None) -> dict[str, Any]:
    """The decoding-policy fields a request set: OpenAI's temperature 0 means the server's fallback ladder, so only a
    temperature above 0 replaces it (one temperature, no fallback)."""
    return {"temperature": temperature or None, "beam_size": beam_size}


def _granularities(requested: list[str] | None, response_format: str) -> set[str]:
    granularities = set(requested or ["segment"])
    if "word" in granularities and response_format != "verbose_json":
        raise APIError(
            400, "timestamp_granularities[]=word requires response_format=verbose_json", param="timestamp_granularities"
        )
    return granularities


def _language(language: str | None) -> str | None:
    if not language:
        return None
    code = language.strip().lower()
    if not _LANGUAGE_CODE.match(code):
        raise APIError(
            400, f"Invalid language '{language}': expected an ISO-639-1 code such as 'en'.", param="language"
        )
    return code


def _check_chunking_strategy(value: str | None) -> None:
    if value is None or value == "auto":
        return
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("type") != "server_vad":
        raise APIError(400, "chunking_strategy must be 'auto' or a server_vad object", param="chunking_strategy")
