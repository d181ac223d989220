"""Whisper's token-suppression masks built once instead of at every decoding step.

transformers' ``SuppressTokensLogitsProcessor`` and ``SuppressTokensAtBeginLogitsProcessor`` rebuild a boolean mask
over the whole vocabulary with ``torch.isin`` on every call (three per token for Whisper; ~1 ms each for tiny.en's
51,864 tokens on a CPU core, a tenth of an int8 decode step). This plugin wraps Whisper's own
``_retrieve_logit_processors`` so the processors it builds are replaced, in place and in the same order, by
subclasses that cache the mask per (vocabulary size, device): the same logits, hence the same tokens.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register


def _cached_mask(cache: dict, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    key = (scores.shape[-1], scores.device)
    mask = cache.get(key)
    if mask is None:
        mask = cache[key] = torch.isin(torch.arange(scores.shape[-1], device=scores.device), tokens.to(scores.device))
    return mask


@functools.cache
def _replacements() -> dict[type, type]:
    """transformers' processor classes -> their caching subclasses (defined at first use: importing transformers
    costs seconds, and a command that never applies this plugin should not pay for it)."""
    from transformers.generation.logits_process import (
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
    )

    class CachedSuppressTokens(SuppressTokensLogitsProcessor):
        def __init__(self, original: SuppressTokensLogitsProcessor):
            self.suppress_tokens = original.suppress_tokens
            self._masks: dict[Any, torch.Tensor] = {}

        def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
            return scores.masked_fill(_cached_mask(self._masks, self.suppress_tokens, scores), -float("inf"))

    class CachedSuppressTokensAtBegin(SuppressTokensAtBeginLogitsProcessor):
        def __init__(self, original: SuppressTokensAtBeginLogitsProcessor):
            self.begin_suppress_tokens = original.begin_suppress_tokens
            self.begin_index = original.begin_index
            self._masks: dict[Any, torch.Tensor] = {}

        def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
            if input_ids.shape[-1] != self.begin_index:
                return scores
            return scores.masked_fill(_cached_mask(self._masks, self.begin_suppress_tokens, scores), -float("inf"))

    return {
        SuppressTokensLogitsProcessor: CachedSuppressTokens,
        SuppressTokensAtBeginLogitsProcessor: CachedSuppressTokensAtBegin,
    }


@register
@dataclass(frozen=True)
class CachedLogitMasks(Plugin):
    name = "cached_logit_masks"
    order = 40
    requires = Requirements(engines=frozenset({"whisper"}))

    def apply(self, engine: TorchEngine) -> TorchEngine:
        model = engine.model
        build = model._retrieve_logit_processors

        def retrieve_cached(*args: Any, **kwargs: Any) -> list:
            processors = build(*args, **kwargs)
            if processors is None:
                return processors
            replacements = _replacements()
            return [replacements[type(p)](p) if type(p) in replacements else p for p in processors]

        model._retrieve_logit_processors = retrieve_cached
        return engine
