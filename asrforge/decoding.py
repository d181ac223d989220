"""The decoding policy a request gets: a named ``conf/decode`` policy (the server's and the CLI's default is
``fallback``, faster-whisper's own default), with what the request set explicitly on top.

An engine that cannot run the *default* policy (Qwen3-ASR has no temperature fallback) decodes greedily instead and
the caller is told why; an option the request asked for explicitly is never dropped: the engine refuses it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cache
from types import MappingProxyType
from typing import Any

from asrforge.config import decode_policy
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import UnsupportedOptionError

log = logging.getLogger(__name__)

DEFAULT_POLICY = "fallback"  # faster-whisper's default: beam 5 with temperature fallback


def with_policy(
    engine: BaseEngine, policy: str | None, options: DecodeOptions, explicit: dict[str, Any] | None = None
) -> tuple[DecodeOptions, str | None]:
    """``options`` with the policy's fields, then ``explicit`` (policy fields the request set), checked against the
    engine. Returns (options, note): the note says why the engine got greedy decoding instead of the policy."""
    explicit = {key: value for key, value in (explicit or {}).items() if value is not None}
    chosen = replace(options, **{**_policy_fields(policy or DEFAULT_POLICY), **_fields(explicit)})
    try:
        engine.check_options(chosen)
        return chosen, None
    except UnsupportedOptionError as refusal:
        if policy not in (None, DEFAULT_POLICY):
            raise  # a policy the configuration named is as explicit as a request option
        greedy = replace(options, **{**_policy_fields("greedy"), **_fields(explicit)})
        engine.check_options(greedy)  # an explicit option the engine cannot honour is refused here
        note = f"{engine.name} cannot decode with the {DEFAULT_POLICY} policy ({refusal}); decoding greedily"
        return greedy, note


@cache
def _policy_fields(name: str) -> MappingProxyType[str, Any]:
    """A policy's fields, read once: parsing its YAML on every request cost the server ~1.8 ms of its overhead."""
    return MappingProxyType(_fields(decode_policy(name)))


def _fields(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
