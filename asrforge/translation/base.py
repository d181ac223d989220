"""The text-translation plugin contract: a frozen dataclass config per back-end, registered by name, that builds a
``Translator``; a translator turns a batch of segment texts into the target language, seeing its neighbours too.

Back-ends are chosen in config (``conf/translation/<name>.yaml`` with a Hydra ``_target_``), as engines and
optimizations are, so adding one is a module with ``@register`` and a yaml file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from asrforge.errors import AsrforgeError, ConfigError, UnsupportedOptionError

# Target languages the prompts know how to name. A translator may support fewer (``Translator.targets``).
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "Simplified Chinese"}


class TranslatorUnavailableError(AsrforgeError):
    """The back-end could not be reached, or did not answer within its timeout (the server answers 503)."""


class TranslatorReplyError(AsrforgeError):
    """The back-end answered, but with an error or a reply that is not the translation asked for (502)."""


@dataclass(frozen=True)
class TranslationRequest:
    """One batch: ``texts`` to translate, with the segments just before and after them as context only."""

    texts: tuple[str, ...]
    target: str
    source: str | None = None  # ISO 639-1 code of the texts, None when unknown
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@runtime_checkable
class Translator(Protocol):
    name: str
    targets: frozenset[str]  # ISO 639-1 codes this back-end translates into

    def translate(self, request: TranslationRequest) -> list[str]:
        """One translation per text of ``request.texts``, in order."""


@dataclass(frozen=True)
class TranslatorConfig:
    """Fields every back-end config has: how segments are grouped into requests."""

    name: ClassVar[str]
    batch_size: int = 8  # segments per request: fewer round trips, and each segment sees its batch-mates
    context_segments: int = 2  # neighbours sent before and after a batch, for pronouns, terms and tone

    def build(self) -> Translator:
        raise NotImplementedError


REGISTRY: dict[str, type[TranslatorConfig]] = {}


def register(name: str) -> Callable[[type[TranslatorConfig]], type[TranslatorConfig]]:
    def add(cls: type[TranslatorConfig]) -> type[TranslatorConfig]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return add


def make_translator_config(node: Mapping[str, Any] | str | None) -> TranslatorConfig | None:
    """The back-end config a settings node names: ``None``, an option name of ``conf/translation``, or a node with
    ``_target_`` (a conf/translation file with the user's overrides)."""
    from hydra.utils import instantiate

    from asrforge.config import load_option

    if node is None or node == "none":
        return None
    if isinstance(node, str):
        node = load_option("translation", node)
    if "_target_" not in node:
        raise ConfigError("a translation config needs _target_ (see conf/translation/*.yaml)")
    try:
        config = instantiate(dict(node), _convert_="all")
    except Exception as error:  # Hydra wraps a bad field in its own exception; say which config was at fault
        raise ConfigError(f"bad translation config {dict(node)!r}: {error}") from error
    if not isinstance(config, TranslatorConfig):
        raise ConfigError(f"{node['_target_']} is not a translator config")
    return config


def check_target(target: str, supported: frozenset[str] | set[str]) -> str:
    """``target`` normalised, or a 400-type error that lists the supported target languages."""
    code = (target or "").strip().lower()
    if code not in supported:
        listed = ", ".join(sorted(supported))
        raise UnsupportedOptionError(
            f"Unsupported target_language {target!r}: this server translates into {listed}.", param="target_language"
        )
    return code
