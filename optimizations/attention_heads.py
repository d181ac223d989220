"""Attention heads pruned: the listed heads of Whisper's attention layers removed from the weights (no retraining).

A pruned head's rows of the query, key and value projections and its columns of the output projection are cut out,
so every later matmul is narrower: a decoder step reads fewer cross-attention keys and values (the step's largest
memory read after the head), an encoder layer attends over fewer heads. What the model computes is exactly the
unpruned model with those heads' outputs set to zero (tested), as in Michel et al., "Are Sixteen Heads Really Better
than One?" (2019). Which heads go is measured, not guessed: ``asrforge run shrink attention_heads`` ranks every head
by how much masking it raises the teacher-forced loss of the model's own transcripts of the dev set's *tuning* part,
and the conf lists the least important ones; reports/cpu/shrink.md gives the WER/speed curve (test part scored).

Heads are named by module path under the Whisper model (``decoder.layers.3.self_attn``), the same in transformers'
model and the lean runtime, so both engines prune the same heads. Word timestamps read fixed cross-attention heads
(``alignment_heads``): those are renumbered, and pruning one of them is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from asrforge.engines.base import TorchEngine
from asrforge.errors import ConfigError
from asrforge.optimizations.base import Plugin, Requirements, Target, register


@register
@dataclass(frozen=True)
class AttentionHeads(Plugin):
    name = "attention_heads"
    order = 15  # before int8 (20): quantize the narrower projections
    requires = Requirements(engines=frozenset({"whisper", "whisper_lean"}))

    # module path under the Whisper model -> head indices to remove
    prune: dict[str, list[int]] = field(default_factory=dict)

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if not any(self.prune.values()):
            return "attention_heads: prune lists no head"
        for path, heads in self.prune.items():
            parts = path.split(".")
            if len(parts) != 4 or parts[0] not in ("encoder", "decoder") or parts[1] != "layers":
                return f"attention_heads: {path!r} is not '<encoder|decoder>.layers.<N>.<self_attn|encoder_attn>'"
            known = parts[3] == "self_attn" or (parts[0], parts[3]) == ("decoder", "encoder_attn")
            if not parts[2].isdigit() or not known:
                return f"attention_heads: {path!r} names no attention layer of Whisper"
            if len(set(heads)) != len(heads) or any(h < 0 for h in heads):
                return f"attention_heads: {path} lists heads {list(heads)}: distinct indices >= 0 expected"
        return None

    def apply(self, engine: TorchEngine) -> TorchEngine:
        whisper = engine.model.model  # transformers' WhisperModel or the lean runtime's: the same module tree
        alignment = _alignment_heads(engine)
        # Every check before the first cut: a refused list leaves the model whole.
        plan = []
        for path, heads in self.prune.items():
            attention = whisper.get_submodule(path)
            count = _heads(attention)
            if max(heads, default=-1) >= count or len(heads) >= count:
                raise ConfigError(f"attention_heads: {path} has {count} heads; cannot prune {sorted(heads)}")
            layer = int(path.split(".")[2])
            if path.startswith("decoder") and path.endswith("encoder_attn") and alignment:
                timed = sorted(h for (at, h) in alignment if at == layer and h in heads)
                if timed:
                    raise ConfigError(f"attention_heads: {path} heads {timed} time words (alignment_heads)")
            plan.append((path, layer, attention, count, sorted(heads)))
        for path, layer, attention, count, heads in plan:
            prune_heads(attention, heads)
            if alignment and path.endswith("encoder_attn"):
                renumber = {old: new for new, old in enumerate(h for h in range(count) if h not in heads)}
                alignment = [[at, renumber[h]] if at == layer else [at, h] for at, h in alignment]
        if alignment and hasattr(engine.model, "generation_config"):
            engine.model.generation_config.alignment_heads = alignment
        return engine


def prune_heads(attention: nn.Module, heads: list[int]) -> None:
    """Remove ``heads`` from one attention module of either runtime, in place."""
    count = _heads(attention)
    dim = attention.head_dim
    kept = torch.cat([torch.arange(h * dim, (h + 1) * dim) for h in range(count) if h not in heads])
    for name in ("q_proj", "k_proj", "v_proj"):
        setattr(attention, name, _rows(getattr(attention, name), kept))
    out = attention.out_proj
    narrow = nn.Linear(len(kept), out.out_features, bias=out.bias is not None, device=out.weight.device)
    narrow.weight = nn.Parameter(out.weight.detach()[:, kept].clone(), requires_grad=False)
    if out.bias is not None:
        narrow.bias = out.bias
    attention.out_proj = narrow.to(out.weight.dtype)
    remaining = count - len(heads)
    if hasattr(attention, "num_heads"):  # transformers' WhisperAttention
        attention.num_heads = remaining
        attention.embed_dim = remaining * dim
    else:  # the lean runtime's Attention
        attention.heads = remaining


def _rows(linear: nn.Linear, kept: torch.Tensor) -> nn.Linear:
    narrow = nn.Linear(linear.in_features, len(kept), bias=linear.bias is not None, device=linear.weight.device)
    narrow.weight = nn.Parameter(linear.weight.detach()[kept].clone(), requires_grad=False)
    if linear.bias is not None:
        narrow.bias = nn.Parameter(linear.bias.detach()[kept].clone(), requires_grad=False)
    return narrow.to(linear.weight.dtype)


def _heads(attention: nn.Module) -> int:
    return attention.num_heads if hasattr(attention, "num_heads") else attention.heads


def _alignment_heads(engine: TorchEngine) -> list[list[int]]:
    """transformers' generation config holds them (and word timing reads them there); the lean engine keeps the
    checkpoint's list for its companion, which prunes (and renumbers) on its own."""
    generation = getattr(engine.model, "generation_config", None)
    heads = getattr(generation, "alignment_heads", None) or getattr(engine, "alignment_heads", None) or []
    return [list(pair) for pair in heads]
