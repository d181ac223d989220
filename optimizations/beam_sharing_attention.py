"""beam_sharing's cross-attention (optimizations/beam_sharing.py), apart so that the plugin's module imports
transformers only when the plugin is applied, and this hot function (every decoder layer, every step) imports
nothing when it runs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.whisper.modeling_whisper import eager_attention_forward


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
