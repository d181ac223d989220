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
from torch import nn

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
        from transformers.cache_utils import EncoderDecoderCache  # here: a command not using it skips the import

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


def shared_cross_attention(
    self: nn.Module,
    hidden_states: torch.Tensor,
    key_value_states: torch.Tensor | None = None,
    cache: Any = None,
    attention_mask: torch.Tensor | None = None,
    output_attentions: bool = False,
    past_key_values: Any = None,
    **kwargs: Any,
):
    """``WhisperAttention.forward`` as cross-attention whose keys and values may hold one row per clip, read by all
    of the clip's beams (the query rows of one clip are consecutive, as ``repeat_interleave`` lays them out)."""
    from transformers.cache_utils import EncoderDecoderCache
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.whisper.modeling_whisper import eager_attention_forward

    cache = cache if cache is not None else past_key_values
    rows, tokens = hidden_states.shape[:2]
    query = (self.q_proj(hidden_states) * self.scaling).view(rows, tokens, -1, self.head_dim)
    layer_cache, filled = None, False
    if isinstance(cache, EncoderDecoderCache):
        filled = cache.is_updated.get(self.layer_idx)
        cache.is_updated[self.layer_idx] = True
        layer_cache = cache.cross_attention_cache
    if layer_cache is not None and filled:
        keys, values = layer_cache.layers[self.layer_idx].keys, layer_cache.layers[self.layer_idx].values
    else:
        kv_shape = (key_value_states.shape[0], -1, self.num_heads, self.head_dim)
        keys = self.k_proj(key_value_states).view(kv_shape).transpose(1, 2).contiguous()
        values = self.v_proj(key_value_states).view(kv_shape).transpose(1, 2).contiguous()
        if layer_cache is not None:
            keys, values = layer_cache.update(keys, values, self.layer_idx)
    beams = rows // keys.shape[0]
    # (rows, tokens, heads, dim) -> (clips, heads, beams x tokens, dim): a clip's beams become more query positions.
    query = query.reshape(keys.shape[0], beams * tokens, -1, self.head_dim).transpose(1, 2).contiguous()
    attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
    output, weights = attention(
        self, query, keys, values, attention_mask, dropout=0.0, scaling=1.0, output_attentions=output_attentions
    )
    # (clips, beams x tokens, heads, dim) -> (rows, tokens, heads x dim)
    output = output.reshape(rows, tokens, -1).contiguous()
    return self.out_proj(output), weights
