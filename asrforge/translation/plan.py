"""How a model and a text translator produce a target language: the model's own speech-to-English pass where it has
one (Whisper's translate task), else transcription followed by text translation. Shared by the server and the CLI.

An English-only model (Whisper tiny.en) has no translate task, but English speech translated into English is its
transcript, which is what OpenAI's endpoint returns for it. Such a model cannot detect the language, so speech is
taken as English unless the request names another language; then the answer is a refusal that names a model with a
translate task (whisper-base), since the English-only model would only produce English-sounding nonsense."""

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


TRANSLATE_CAPABLE_ENGINE = "whisper-base"  # conf/engine/whisper-base.yaml: multilingual, with a translate task


def plan_translation(
    engine: BaseEngine, translator: Translator | None, target_language: str, source_language: str | None = None
) -> TranslationPlan:
    """The plan for ``target_language``; ``UnsupportedOptionError`` (param ``target_language``) naming the targets
    this engine and translator can produce when it is not one of them. ``source_language`` is the speech's language
    when the caller knows it (None: unknown)."""
    if target_language.strip().lower() == "en" and _english_only(engine):
        if source_language not in (None, "en"):
            raise UnsupportedOptionError(
                f"{engine.model_name} is an English-only model: it cannot translate {source_language!r} speech. "
                f"Serve a model with a translate task, e.g. `asrforge serve engine={TRANSLATE_CAPABLE_ENGINE}`.",
                param="language",
            )
        return TranslationPlan("transcribe", None)  # English speech: its English translation is its transcript
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
    plan = plan_translation(engine, translator, target_language, options.language)
    options = replace(options, task=plan.task)
    target = plan.text_target
    if target is None or translator is None or config is None:
        return options, None

    def translate(transcript: Transcript) -> Transcript:
        if transcript.language == target:  # speech already in the target language needs no translation
            return transcript
        return translate_transcript(transcript, translator, target, config.batch_size, config.context_segments)

    return options, translate


def _english_only(engine: BaseEngine) -> bool:
    caps = engine.capabilities
    return not caps.translate and caps.languages is not None and set(caps.languages) == {"en"}
