"""Rank Whisper's attention heads by importance on the tuning part, for the attention_heads plugin.

A head's importance is how much masking it alone (its output zeroed before the output projection) raises the
teacher-forced loss of the unpruned model's own greedy transcripts (timestamps included) of the tuning files: the
test-time measure of Michel et al. (2019), with the model's transcripts as labels so no reference text is read.
Decoder heads reuse each file's encoder states; encoder heads re-encode.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from asrforge.engines import load_engine
from asrforge.engines.base import DecodeOptions
from asrforge.engines.whisper_lean import WhisperLeanConfig


@dataclass(frozen=True)
class HeadScore:
    path: str  # module path under the Whisper model, as attention_heads names it
    head: int
    loss_rise: float  # nats over the tuning files; negative: the model is surer of its own transcript without it
    times_words: bool  # one of the cross-attention heads word timestamps read (alignment_heads): never pruned


def rank_heads(clips: Sequence[np.ndarray], model: str = "tiny.en") -> list[HeadScore]:
    """Every attention head of ``model``, least important first."""
    engine = load_engine(WhisperLeanConfig(model=model, device="cpu"))
    whisper = engine.model.model
    with torch.inference_mode():
        features = [engine.log_mel(clip) for clip in clips]
        labels = [
            [engine.special.sot, *(t for s in engine.long_form(f, "en", DecodeOptions()) for t in s.tokens)]
            for f in features
        ]
        encoded = [engine.encode(f, 0) for f in features]

        def loss(encode: bool) -> float:
            total = 0.0
            for index, tokens in enumerate(labels):
                states = engine.encode(features[index], 0) if encode else encoded[index]
                caches = engine.model.new_caches(states, 1, len(tokens))
                hidden = whisper.decoder(torch.tensor([[tokens]]), caches, 0)
                logits = engine.model.proj_out(hidden)[0, 0, :-1].float()
                total += float(F.cross_entropy(logits, torch.tensor(tokens[1:]), reduction="sum"))
            return total

        base = loss(encode=False)
        timing = {f"decoder.layers.{layer}.encoder_attn:{head}" for layer, head in engine.alignment_heads}
        scores = []
        for path, attention in _attention_modules(whisper):
            for head in range(attention.heads):
                with _masked(attention, head):
                    rise = loss(encode=path.startswith("encoder")) - base
                scores.append(HeadScore(path, head, round(rise, 3), f"{path}:{head}" in timing))
    return sorted(scores, key=lambda score: score.loss_rise)


def prune_map(scores: Sequence[HeadScore], count: int) -> dict[str, list[int]]:
    """attention_heads' ``prune`` setting for the ``count`` least important heads, the word-timing ones excepted."""
    prune: dict[str, list[int]] = {}
    for score in [s for s in scores if not s.times_words][:count]:
        prune.setdefault(score.path, []).append(score.head)
    return {path: sorted(heads) for path, heads in sorted(prune.items())}


def _attention_modules(whisper: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module]]:
    for part in ("encoder", "decoder"):
        for index, layer in enumerate(getattr(whisper, part).layers):
            for kind in ("self_attn", "encoder_attn") if part == "decoder" else ("self_attn",):
                yield f"{part}.layers.{index}.{kind}", getattr(layer, kind)


@contextmanager
def _masked(attention: torch.nn.Module, head: int) -> Iterator[None]:
    dim = attention.head_dim

    def zero_head(module, args):
        (merged,) = args
        merged = merged.clone()
        merged[..., head * dim : (head + 1) * dim] = 0
        return (merged,)

    handle = attention.out_proj.register_forward_pre_hook(zero_head)
    try:
        yield
    finally:
        handle.remove()
