"""Beam search that keeps one copy of a clip's encoder states instead of one per beam (lossless).

transformers' ``generate`` repeats every input ``num_beams`` times before beam search, the encoder's output
included, so with Whisper's 5 beams the decoder projects the same encoder states into cross-attention keys and values
five times, stores five identical copies in the cross-attention cache, reads all five at every step, and
``reorder_cache`` copies them again at every step although a beam only ever moves to another beam of its own clip.
On a CPU this was a third of a beam-5 decode of tiny.en (index_select alone 1.45 s of 8.7 s on eight dev clips:
profile in this plugin's commit message). CTranslate2 keeps one copy per clip.

This plugin leaves the encoder states unrepeated, so the cross-attention cache holds one row per clip; a decoder
layer's cross-attention folds a clip's beams into its query length (``(clips, heads, beams x tokens, dim)``), which
is the same attention per query row; and a beam-search step reorders the self-attention cache only. Greedy and
sampling decodes (one row per clip) are untouched. Word timestamps read per-beam cross-attention weights, so a decode
asking for them keeps transformers' layout.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import torch

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class BeamSharing(Plugin):
    name = "beam_sharing"
    order = 40
    requires = Requirements(
        engines=frozenset({"whisper"}),
        # A static cache is allocated for every beam's row before the first step.
        conflicts=frozenset({"static_cache"}),
    )

    def apply(self, engine: TorchEngine) -> TorchEngine:
        # Imported here: a command that does not apply this plugin skips transformers' import.
        from transformers.cache_utils import EncoderDecoderCache

        from asrforge.optimizations.beam_sharing_attention import shared_cross_attention

        model = engine.model
        sharing = [True]  # off for a decode that asks for word timestamps (set per decode below)
        expand = model._expand_inputs_for_generation

        def expand_all_but_the_encoder(expand_size: int = 1, is_encoder_decoder: bool = False, **model_kwargs: Any):
            encoder_outputs = model_kwargs.get("encoder_outputs")
            if not (sharing[0] and is_encoder_decoder and expand_size > 1 and encoder_outputs is not None):
                return expand(expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, **model_kwargs)
            del model_kwargs["encoder_outputs"]
            input_ids, model_kwargs = expand(expand_size=expand_size, is_encoder_decoder=False, **model_kwargs)
            model_kwargs["encoder_outputs"] = encoder_outputs
            return input_ids, model_kwargs

        def reorder_self_attention_only(cache: Any, beam_idx: torch.LongTensor):
            # A beam moves only among its own clip's beams, and every beam of a clip reads the same encoder states.
            if isinstance(cache, EncoderDecoderCache) and sharing[0]:
                cache.self_attention_cache.reorder_cache(beam_idx)
            else:
                cache.reorder_cache(beam_idx)
            return cache

        model._expand_inputs_for_generation = expand_all_but_the_encoder
        model._reorder_cache = reorder_self_attention_only
        for layer in engine.decoder_module().layers:
            layer.encoder_attn.forward = types.MethodType(shared_cross_attention, layer.encoder_attn)

        decode = engine.decode

        def decode_sharing(batch, options):
            sharing[0] = not options.word_timestamps
            return decode(batch, options)

        engine.decode = decode_sharing
        return engine
