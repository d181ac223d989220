"""Text translation after speech recognition: a plugin interface with back-ends chosen in config
(``conf/translation``), and a transcript translated segment by segment with its timing kept."""

from asrforge.translation import chat_completions  # noqa: F401  (imported to register the back-end)
from asrforge.translation.base import (
    LANGUAGE_NAMES,
    REGISTRY,
    TranslationRequest,
    Translator,
    TranslatorConfig,
    TranslatorReplyError,
    TranslatorUnavailableError,
    check_target,
    make_translator_config,
    register,
)
from asrforge.translation.segments import translate_transcript

__all__ = [
    "LANGUAGE_NAMES",
    "REGISTRY",
    "TranslationRequest",
    "Translator",
    "TranslatorConfig",
    "TranslatorReplyError",
    "TranslatorUnavailableError",
    "check_target",
    "make_translator_config",
    "register",
    "translate_transcript",
]
