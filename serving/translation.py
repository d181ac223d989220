"""``/v1/audio/translations`` into English or Chinese. English from a model with a translate task (Whisper) is its
own one-pass speech translation; every other case is transcription followed by text translation through the
configured back-end (``serving.translation``), each translated segment keeping its source segment's start and end,
so SRT/WebVTT cues keep the source timing."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from asrforge.engines.base import DecodeOptions
from asrforge.formats import render
from asrforge.serving.errors import APIError, ErrorResponse
from asrforge.serving.service import Audio, TranscriptionService
from asrforge.serving.settings import ServerSettings
from asrforge.translation import (
    LANGUAGE_NAMES,
    Translator,
    TranslatorConfig,
    TranslatorReplyError,
    TranslatorUnavailableError,
    make_translator_config,
)
from asrforge.translation.plan import TextTranslation, translation_step

TargetLanguageField = Annotated[
    str,
    Form(
        description="The language of the text returned: `en` (OpenAI's behaviour) or `zh` (Simplified Chinese). "
        "English comes from the model's own translate task where it has one (Whisper), else from the text "
        "translator; other targets always use the text translator the server is configured with "
        "(`serving.translation`). A target this server cannot produce is a 400 that lists the ones it can.",
        json_schema_extra={"enum": sorted(LANGUAGE_NAMES)},
        examples=["zh"],
    ),
]

_ERROR_EXAMPLES = {
    400: {"message": "Unsupported target_language 'fr': this server translates into en, zh.",
          "type": "invalid_request_error", "param": "target_language", "code": "unsupported_value"},
    502: {"message": "The translation back-end at http://127.0.0.1:8001/v1 answered 404: model not found",
          "type": "server_error", "param": None, "code": "translator_error"},
    503: {"message": "The translation back-end at http://127.0.0.1:8001/v1 did not answer within 30 s.",
          "type": "server_error", "param": None, "code": "translator_unavailable"},
}  # fmt: skip
TRANSLATION_ERRORS: dict[int | str, dict] = {
    502: {
        "model": ErrorResponse,
        "description": "The text translator answered with an error, or with something that is not the translation",
        "content": {"application/json": {"example": {"error": _ERROR_EXAMPLES[502]}}},
    },
    503: {
        "model": ErrorResponse,
        "description": "The model failed to load, or the text translator cannot be reached or did not answer "
        "within its timeout (the message says which)",
        "content": {"application/json": {"example": {"error": _ERROR_EXAMPLES[503]}}},
    },
}


def build_translator(settings: ServerSettings) -> tuple[TranslatorConfig | None, Translator | None]:
    """The configured text translator (built at start-up, so a bad config stops the server, not a request)."""
    config = make_translator_config(settings.translation)
    return config, config.build() if config is not None else None


async def plan_request(
    state: State, target_language: str, options: DecodeOptions
) -> tuple[DecodeOptions, TextTranslation | None]:
    """The decode options for the speech model, and the text translation its transcript then needs (None: none)."""
    service: TranscriptionService = state.service
    engine = await service.with_timeout(service.scheduler.wait_ready())
    options, translate = translation_step(engine, options, target_language, state.translator, state.translator_config)
    if translate is not None and options.word_timestamps:
        raise APIError(
            400,
            "Word timestamps are not available for text-translated output: its words were never spoken. Ask for "
            "segment timestamps (the default).",
            param="timestamp_granularities",
        )
    return options, translate


async def translated_body(
    service: TranscriptionService,
    audio: Audio,
    options: DecodeOptions,
    translate: TextTranslation,
    response_format: str,
) -> str:
    """Transcribe, translate segment by segment (timing kept), render in ``response_format``."""
    transcript = await service.transcribe(audio, options)
    try:
        transcript = await run_in_threadpool(translate, transcript)
    except TranslatorUnavailableError as error:
        raise APIError(503, str(error), code="translator_unavailable") from None
    except TranslatorReplyError as error:
        raise APIError(502, str(error), code="translator_error") from None
    return render(transcript, response_format, task="translate")
