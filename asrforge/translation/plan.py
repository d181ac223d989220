"""How a model and a text translator produce a target language: the model's own speech-to-English pass where it has
one (Whisper's translate task), else transcription followed by text translation. Shared by the server and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import UnsupportedOptionError
from asrforge.transcript import Transcript
from asrforge.translation.base import Translator, TranslatorConfig, check_target
from asrforge.translation.segments import translate_transcript

TextTranslation = Callable[[Transcript], Transcript]  # a transcript in, the same in the target language out


@dataclass(frozen=True)
class TranslationPlan:
    task: Literal["transcribe", "translate"]  # what the speech model does
    text_target: str | None  # then the text translator into this language; None: the model's text is the answer


def plan_translation(engine: BaseEngine, translator: Translator | None, target_language: str) -> TranslationPlan:
    """The plan for ``target_language``; ``UnsupportedOptionError`` (param ``target_language``) naming the targets
    this engine and translator can produce when it is not one of them."""
    speech_english = engine.capabilities.translate
    supported = ({"en"} if speech_english else set()) | set(translator.targets if translator else ())
    if not supported:
        if target_language.strip().lower() == "en":
            return TranslationPlan("translate", None)  # the engine refuses with its own reason: no translate task
        raise UnsupportedOptionError(
            f"Unsupported target_language {target_language!r}: {engine.model_name} has no translate task and no "
            "text translator is configured (serving.translation).",
            param="target_language",
        )
    target = check_target(target_language, supported)
    if target == "en" and speech_english:
        return TranslationPlan("translate", None)
    return TranslationPlan("transcribe", target)


def translation_step(
    engine: BaseEngine,
    options: DecodeOptions,
    target_language: str,
    translator: Translator | None,
    config: TranslatorConfig | None,
) -> tuple[DecodeOptions, TextTranslation | None]:
    """The options to decode with, and what turns their transcript into the target language (None: nothing to do)."""
    plan = plan_translation(engine, translator, target_language)
    options = replace(options, task=plan.task)
    target = plan.text_target
    if target is None or translator is None or config is None:
        return options, None

    def translate(transcript: Transcript) -> Transcript:
        if transcript.language == target:  # speech already in the target language needs no translation
            return transcript
        return translate_transcript(transcript, translator, target, config.batch_size, config.context_segments)

    return options, translate
