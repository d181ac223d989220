"""Translation by any OpenAI-compatible chat-completions endpoint: a vLLM or llama.cpp server running a Qwen3
instruct model, say, or OpenAI itself. The ``openai`` client speaks the protocol; its timeout bounds every call, so
an unreachable or silent back-end becomes ``TranslatorUnavailableError`` within ``timeout_s``, never a hang."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asrforge.errors import ConfigError
from asrforge.translation.base import (
    LANGUAGE_NAMES,
    TranslationRequest,
    TranslatorConfig,
    TranslatorReplyError,
    TranslatorUnavailableError,
    register,
)

if TYPE_CHECKING:
    import openai

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)  # Qwen3 and other reasoning models may think aloud first
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

SYSTEM_PROMPT = (
    "You translate transcribed speech into {target}. The user sends a JSON object: `segments` are consecutive "
    "pieces of one recording to translate; `context_before` and `context_after` are the pieces around them, for "
    "reference only (never translate them). Translate each segment on its own, faithfully and naturally, keeping "
    'names and numbers. Reply with JSON only: {{"translations": [...]}}, exactly one {target} string per segment, '
    "in order."
)


@register("chat_completions")
@dataclass(frozen=True)
class ChatCompletionsConfig(TranslatorConfig):
    base_url: str = "http://127.0.0.1:8001/v1"
    model: str = "Qwen/Qwen3-8B"
    api_key: str | None = None  # None: read ``api_key_env`` (keys stay out of config files)
    api_key_env: str = "ASRFORGE_TRANSLATION_API_KEY"
    timeout_s: float = 30.0  # per request to the back-end, connecting included
    temperature: float = 0.0
    max_tokens: int | None = None
    targets: tuple[str, ...] = ("en", "zh")
    extra_body: dict[str, Any] = field(default_factory=dict)  # e.g. {chat_template_kwargs: {enable_thinking: false}}

    def __post_init__(self) -> None:
        unknown = sorted(set(self.targets) - set(LANGUAGE_NAMES))
        if unknown:
            raise ConfigError(f"no prompt for target language(s) {unknown} (known: {', '.join(LANGUAGE_NAMES)})")
        if self.timeout_s <= 0:
            raise ConfigError("translation timeout_s must be positive")

    def build(self) -> ChatCompletionsTranslator:
        return ChatCompletionsTranslator(self)


class ChatCompletionsTranslator:
    name = "chat_completions"

    def __init__(self, config: ChatCompletionsConfig):
        self.config = config
        self.targets = frozenset(config.targets)

    @cached_property
    def client(self) -> openai.OpenAI:
        try:
            import openai
        except ImportError as error:
            raise ConfigError("the chat_completions translator needs `pip install 'asrforge[translation]'`") from error
        key = self.config.api_key or os.environ.get(self.config.api_key_env) or "unused"
        # No retries: a caller waiting on a request should get the back-end's failure, not several timeouts in a row.
        return openai.OpenAI(base_url=self.config.base_url, api_key=key, timeout=self.config.timeout_s, max_retries=0)

    def translate(self, request: TranslationRequest) -> list[str]:
        reply = self._complete(request)
        translations = _parse(reply, len(request.texts))
        if translations is not None:
            return translations
        if len(request.texts) == 1:
            if not reply:
                raise TranslatorReplyError(f"The translation back-end gave an empty reply for {request.texts[0]!r}.")
            return [reply]  # a model that answers a single segment with the bare translation
        # A model that cannot keep a batch's count straight still gets each segment with its neighbours.
        n = self.config.context_segments
        texts, before, after = list(request.texts), list(request.before), list(request.after)
        return [
            self.translate(
                TranslationRequest(
                    texts=(text,),
                    target=request.target,
                    source=request.source,
                    before=tuple((before + texts[:i])[-n:] if n else ()),
                    after=tuple((texts[i + 1 :] + after)[:n]),
                )
            )[0]
            for i, text in enumerate(texts)
        ]

    def _complete(self, request: TranslationRequest) -> str:
        import openai

        target = LANGUAGE_NAMES[request.target]
        payload = {
            "source_language": LANGUAGE_NAMES.get(request.source or "", request.source or "unknown"),
            "context_before": list(request.before),
            "segments": list(request.texts),
            "context_after": list(request.after),
        }
        where = self.config.base_url
        try:
            response = self.client.chat.completions.create(
                model=self.config.model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT.format(target=target)},
                    {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
                ],
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                extra_body=self.config.extra_body or None,
            )
        except openai.APITimeoutError:
            raise TranslatorUnavailableError(
                f"The translation back-end at {where} did not answer within {self.config.timeout_s:g} s."
            ) from None
        except openai.APIConnectionError as error:
            raise TranslatorUnavailableError(
                f"The translation back-end at {where} cannot be reached: {error.__cause__ or error}"
            ) from None
        except openai.APIStatusError as error:
            raise TranslatorReplyError(
                f"The translation back-end at {where} answered {error.status_code}: {error.message}"
            ) from None
        if not response.choices:
            raise TranslatorReplyError(f"The translation back-end at {where} answered without a choice.")
        return _THINKING.sub("", response.choices[0].message.content or "").strip()


def _parse(reply: str, expected: int) -> list[str] | None:
    """The reply's translations when it is the JSON asked for with ``expected`` strings, else None."""
    match = _JSON_OBJECT.search(reply)
    if not match:
        return None
    try:
        translations = json.loads(match.group(0)).get("translations")
    except (json.JSONDecodeError, AttributeError):
        return None
    if not isinstance(translations, list) or len(translations) != expected:
        return None
    if not all(isinstance(t, str) for t in translations):
        return None
    return [t.strip() for t in translations]
