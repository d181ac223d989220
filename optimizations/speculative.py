"""Speculative decoding (SpecASR-style): a small draft model proposes tokens, the target verifies them in one
forward pass, through transformers' assisted generation (``generate(assistant_model=...)``).

Greedy output is the target's own, token for token: a drafted token is kept only where the target's argmax agrees.
The draft must share the target's tokenizer (Qwen3-ASR 0.6B drafts for 1.7B). SpecASR's adaptive draft length is
what transformers already offers and is used as is: the ``heuristic`` schedule lengthens the draft by 2 after a fully
accepted one and shortens it by 1 otherwise, and drafting stops early when the draft's own confidence in its next
token drops below ``confidence_threshold``. SpecASR's draft-sequence recycling (reusing the rejected tail of a draft)
has no hook in transformers' candidate generator and is not done here.

transformers' assisted generation takes one sequence at a time, so a batch is decoded clip by clip. It also runs the
draft's prefill as a non-first iteration, which drops multimodal inputs: a Qwen3-ASR draft would draft from the text
prompt alone, without the audio (seen: 6 % acceptance for a draft identical to the target). ``_DraftAudio`` hands the
clip's features back to the draft's forward where its input holds the audio placeholders. The acceptance
rate (accepted / drafted tokens) is counted from forward calls and kept in ``engine.stats["speculative"]``, which the
harness writes into the record.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from asrforge.config import group_options, load_option
from asrforge.engines.base import DecodeOptions, TorchEngine
from asrforge.engines.weights import names_a_checkpoint, sibling_node, with_overrides
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.transcript import Transcript

SCHEDULES = ("heuristic", "constant")


class _CallCounter:
    """Counts forward calls of a module (a decoder's calls are its decoding steps)."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        module.register_forward_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.calls += 1


class _DraftAudio:
    """Gives the draft the audio of the clip being decoded: the features of the target's ``generate`` call are put in
    ``pending``, and a forward pre-hook adds them to the draft's forward whose ``input_ids`` hold audio tokens."""

    def __init__(self, draft: torch.nn.Module):
        self.pending: dict[str, torch.Tensor] = {}
        self.audio_token_id = draft.config.audio_token_id
        draft.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        input_ids = kwargs.get("input_ids")
        if "input_features" not in kwargs and input_ids is not None and (input_ids == self.audio_token_id).any():
            kwargs.update(self.pending)
        return args, kwargs


@register
@dataclass(frozen=True)
class Speculative(Plugin):
    name = "speculative"
    order = 40
    requires = Requirements(engines=frozenset({"qwen3_asr"}), conflicts=frozenset({"cuda_graphs"}))

    # A conf/engine option (random weights of its preset unless its model is a checkpoint), or a checkpoint directory
    # / hub id loaded with the target's engine; either way it must share the target's tokenizer.
    draft: str = "qwen3-asr-0.6b"
    draft_seed: int | None = None  # a random-weight option: the draft's seed (None = the option's own)
    num_assistant_tokens: int = 5  # initial draft length
    schedule: str = "heuristic"  # "heuristic" (adaptive draft length) or "constant"
    confidence_threshold: float = 0.4  # stop a draft when the draft's probability of its token falls below this

    def refusal(self, target: Target) -> str | None:
        if self.schedule not in SCHEDULES:
            return f"speculative: unknown schedule {self.schedule!r} ({', '.join(SCHEDULES)})"
        if not self.draft:
            return "speculative needs a draft model: set draft to a conf/engine option sharing the target's tokenizer"
        if self.draft not in group_options("engine") and not names_a_checkpoint(self.draft):
            return f"speculative: the draft {self.draft!r} is neither a conf/engine option nor a checkpoint path"
        return super().refusal(target)

    def load_draft(self, engine: TorchEngine) -> TorchEngine:
        from asrforge.engines import load_engine

        if self.draft in group_options("engine"):
            node = OmegaConf.to_container(load_option("engine", self.draft), resolve=True)
            node = with_overrides(node, device=engine.device, dtype=engine.dtype, seed=self.draft_seed)
        else:  # a checkpoint directory or hub id: the target's engine with those weights
            node = sibling_node(engine.config, self.draft, device=engine.device, dtype=engine.dtype)
        draft = load_engine(instantiate(node, _convert_="all"))
        if not isinstance(draft, TorchEngine) or draft.name != engine.name:
            raise ValueError(f"speculative: draft {self.draft!r} is not a {engine.name} engine")
        if draft.processor.tokenizer.get_vocab() != engine.processor.tokenizer.get_vocab():
            raise ValueError(f"speculative: draft {self.draft!r} does not share the target's tokenizer")
        return draft

    def apply(self, engine: TorchEngine) -> TorchEngine:
        draft = self.load_draft(engine)
        config = draft.model.generation_config
        config.num_assistant_tokens = self.num_assistant_tokens
        config.num_assistant_tokens_schedule = self.schedule
        config.assistant_confidence_threshold = self.confidence_threshold
        engine.generate_kwargs["assistant_model"] = draft.model
        engine.speculative_draft = draft  # keeps the draft engine (its processor, its hooks) alive with the target
        target_steps, draft_steps = _CallCounter(engine.decoder_module()), _CallCounter(draft.decoder_module())
        draft_audio = _DraftAudio(draft.model)
        stats = engine.stats.setdefault(self.name, {"draft": self.draft, "draft_weights": draft.weights})
        generate, decode = engine.model.generate, engine.decode

        @functools.wraps(generate)
        def counted_generate(*args: Any, **kwargs: Any) -> torch.Tensor:
            draft_audio.pending = {
                key: kwargs[key] for key in ("input_features", "input_features_mask") if key in kwargs
            }
            before = target_steps.calls, draft_steps.calls
            sequences = generate(*args, **kwargs)
            tokens = sequences.shape[1] - kwargs["input_ids"].shape[1]
            verified, drafted = target_steps.calls - before[0], draft_steps.calls - before[1]
            # Every verification pass yields one token of the target's own beyond the drafted tokens it accepted.
            accepted = min(drafted, max(0, tokens - verified))
            current = engine.stats.setdefault(self.name, {"draft": self.draft, "draft_weights": draft.weights})
            current["drafted"] = current.get("drafted", 0) + drafted
            current["accepted"] = current.get("accepted", 0) + accepted
            current["acceptance_rate"] = (
                round(current["accepted"] / current["drafted"], 4) if current["drafted"] else None
            )
            return sequences

        def one_by_one(batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
            return [transcript for clip in batch for transcript in decode([clip], options)]

        stats.setdefault("acceptance_rate", None)
        engine.model.generate = counted_generate
        engine.decode = one_by_one
        return engine
