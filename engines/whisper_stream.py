"""Whisper's incremental decoder for ``IncrementalSession``: what can and cannot be reused across chunks.

Whisper is an encoder-decoder: every decoder token cross-attends to the *whole* encoder output, and with the
full-context encoder every encoder state depends on all audio in the window. So when a chunk arrives:

- the decoder's self-attention cache of the fixed prefix can NOT be kept: the fixed tokens' hidden states (hence
  their keys/values in every layer after the first) depend on the encoder states, which all changed. What is
  reused is the fixed *text*: it is forced and prefilled in one parallel pass instead of being decoded again
  token by token, and audio before a commit is never encoded again;
- with ``causal_encoder`` the window is encoded in 1-s blocks, each attending to itself and earlier blocks only,
  with every layer's keys/values of finished blocks cached: a new block costs a constant amount and the states of
  finished blocks never change. Then ``kv_reuse`` also keeps the decoder's cross-attention keys/values of
  finished blocks across chunks (they are projections of fixed states) and projects only the new ones.

The full-context path pads the window to 30 s as Whisper was trained, or with ``window_margin_s`` (kv_reuse's
default) to the audio plus that margin, as encoder_window trims offline decodes: a chunk's encoder cost then follows
the window's length instead of always 30 s; the causal path encodes only the audio there is (no padding: padding
frames would be "future" blocks), which is part of what it costs in WER.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DynamicCache, EncoderDecoderCache

from asrforge.engines.stream_session import IncrementalDecoder, StreamSettings
from asrforge.engines.whisper import WhisperEngine, encode_frames, trimmed_frames
from asrforge.engines.whisper_stream_tokens import greedy_continuation, suppress_masks, token_budget

BLOCK_FRAMES = 100  # 1 s of mel frames: the causal encoder's block (50 encoder positions)


class CausalWhisperEncoder:
    """Whisper's encoder run block by block with a block-causal mask and cached per-layer keys/values."""

    def __init__(self, encoder: torch.nn.Module):
        self.encoder = encoder
        self.reset()

    def reset(self) -> None:
        self._keys: list[torch.Tensor | None] = [None] * len(self.encoder.layers)
        self._values: list[torch.Tensor | None] = [None] * len(self.encoder.layers)
        self._states: list[torch.Tensor] = []  # final encoder states of finished blocks
        self.finished_blocks = 0

    @property
    def final_positions(self) -> int:
        """Encoder positions whose states can no longer change (those of finished blocks)."""
        return self.finished_blocks * BLOCK_FRAMES // 2

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder states (1, T, d) for the window's features (1, mels, frames) so far; frames of finished blocks
        are taken from the cache, not from ``features``."""
        frames = features.shape[-1]
        if (frames + 1) // 2 > self.encoder.config.max_source_positions:
            raise ValueError(f"the causal encoder takes at most 30 s of audio; got {frames} mel frames")
        while (self.finished_blocks + 1) * BLOCK_FRAMES <= frames:
            start = self.finished_blocks * BLOCK_FRAMES
            self._states.append(self._block(features[..., start : start + BLOCK_FRAMES], keep=True))
            self.finished_blocks += 1
        tail_start = self.finished_blocks * BLOCK_FRAMES
        tail = [self._block(features[..., tail_start:], keep=False)] if frames > tail_start else []
        return torch.cat(self._states + tail, dim=1)

    def _block(self, features: torch.Tensor, keep: bool) -> torch.Tensor:
        encoder = self.encoder
        # Each block convolves alone (zero padding at its edges, as Qwen3-ASR's encoder convolves its 1-s chunks),
        # so a block's states never depend on frames after it.
        hidden = F.gelu(encoder.conv2(F.gelu(encoder.conv1(features.to(encoder.conv1.weight.dtype)))))
        hidden = hidden.permute(0, 2, 1)
        offset = self.final_positions
        hidden = hidden + encoder.embed_positions.weight[offset : offset + hidden.shape[1]]
        for index, layer in enumerate(encoder.layers):
            hidden = self._layer(index, layer, hidden, keep)
        return encoder.layer_norm(hidden)

    def _layer(self, index: int, layer: torch.nn.Module, hidden: torch.Tensor, keep: bool) -> torch.Tensor:
        """``WhisperEncoderLayer.forward`` with the block's queries attending to cached keys/values of earlier
        blocks (transformers' encoder layer has no cache, so its few lines are written out here)."""
        attention = layer.self_attn
        batch, length, _ = hidden.shape
        shape = (batch, length, attention.num_heads, attention.head_dim)
        normed = layer.self_attn_layer_norm(hidden)
        query = (attention.q_proj(normed) * attention.scaling).view(shape).transpose(1, 2)
        key = attention.k_proj(normed).view(shape).transpose(1, 2)
        value = attention.v_proj(normed).view(shape).transpose(1, 2)
        past_key, past_value = self._keys[index], self._values[index]
        keys = key if past_key is None else torch.cat([past_key, key], dim=2)
        values = value if past_value is None else torch.cat([past_value, value], dim=2)
        if keep:
            self._keys[index], self._values[index] = keys, values
        attended = F.scaled_dot_product_attention(query, keys, values, scale=1.0)
        hidden = hidden + attention.out_proj(attended.transpose(1, 2).reshape(batch, length, -1))
        feed_forward = layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
        return hidden + feed_forward


class WhisperIncrementalDecoder(IncrementalDecoder):
    def __init__(self, engine: WhisperEngine, settings: StreamSettings, language: str | None = None):
        self.engine = engine
        self.settings = settings
        model = engine.model
        generation = model.generation_config
        self.eot = generation.eos_token_id
        prompt = [generation.decoder_start_token_id]
        if engine.is_multilingual:
            prompt += [generation.lang_to_id[f"<|{language or 'en'}|>"], generation.task_to_id["transcribe"]]
        self.prompt = [*prompt, generation.no_timestamps_token_id]
        self.masks = suppress_masks(
            model.config.vocab_size,
            self.eot,
            generation.suppress_tokens or [],
            generation.begin_suppress_tokens or [],
            engine.device,
        )
        self._cache_config = copy.deepcopy(model.config)
        self._cache_config.num_hidden_layers = model.config.decoder_layers
        self.encoder = CausalWhisperEncoder(engine.encoder_module()) if settings.causal_encoder else None
        self.reset()

    def reset(self) -> None:
        if self.encoder is not None:
            self.encoder.reset()
        self._cross: list[tuple[torch.Tensor, torch.Tensor]] = []  # cross keys/values of final encoder positions
        self._cross_length = 0

    def text(self, tokens: list[int]) -> str:
        return self.engine.processor.tokenizer.decode([t for t in tokens if t < self.eot])

    def hypothesis(self, audio: np.ndarray, fixed: list[int]) -> list[int]:
        engine = self.engine
        with engine.inference_context():
            features, _ = engine.features([audio])
            features = engine.to_device(features, engine.torch_dtype)
            if self.encoder is None:
                frames = trimmed_frames(features.shape[-1], self.settings.window_margin_s, engine.window_frames)
                padded = F.pad(features, (0, frames - features.shape[-1]))
                encoder = engine.encoder_module()
                states = encoder(padded) if frames == engine.window_frames else encode_frames(encoder, padded)
                states = states.last_hidden_state
                cache = self._new_cache()
            else:
                states = self.encoder.encode(features)
                cache = self._cache_with_cross(states) if self.settings.kv_reuse else self._new_cache()
            positions = engine.model.config.max_target_positions
            budget = token_budget(len(audio), len(self.prompt), len(fixed), positions)
            return fixed + self._greedy(states, cache, fixed, budget)

    def _new_cache(self) -> EncoderDecoderCache:
        return EncoderDecoderCache(DynamicCache(config=self._cache_config), DynamicCache(config=self._cache_config))

    def _cache_with_cross(self, states: torch.Tensor) -> EncoderDecoderCache:
        """A cache whose cross-attention part is filled: kept projections of final positions, new ones added."""
        final = self.encoder.final_positions
        layers = self.engine.decoder_module().layers
        if final > self._cross_length:
            new = [_project(layer.encoder_attn, states[:, self._cross_length : final]) for layer in layers]
            self._cross = (
                new if not self._cross else [_cat(old, add) for old, add in zip(self._cross, new, strict=True)]
            )
            self._cross_length = final
        cache = self._new_cache()
        tail = states[:, final:]
        for index, layer in enumerate(layers):
            keys, values = self._cross[index] if self._cross else (None, None)
            if tail.shape[1]:
                extra = _project(layer.encoder_attn, tail)
                keys, values = _cat((keys, values), extra) if keys is not None else extra
            cache.cross_attention_cache.update(keys, values, index)
            cache.is_updated[index] = True
        return cache

    def _greedy(self, states: torch.Tensor, cache: EncoderDecoderCache, fixed: list[int], budget: int) -> list[int]:
        """Prefill prompt + fixed tokens in one pass, then decode greedily until end of text or ``budget``."""
        model = self.engine.model
        decoder = self.engine.decoder_module()

        def step(ids: list[int]) -> torch.Tensor:
            tokens = torch.tensor([ids], device=self.engine.device)
            hidden = decoder(input_ids=tokens, encoder_hidden_states=states, cache=cache, use_cache=True)
            return model.proj_out(hidden.last_hidden_state[:, -1]).float()[0]

        return greedy_continuation(step, self.prompt + fixed, fixed, budget, self.eot, self.masks)


def _project(attention: torch.nn.Module, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (states.shape[0], states.shape[1], attention.num_heads, attention.head_dim)
    keys = attention.k_proj(states).view(shape).transpose(1, 2).contiguous()
    values = attention.v_proj(states).view(shape).transpose(1, 2).contiguous()
    return keys, values


def _cat(old: tuple[torch.Tensor, torch.Tensor], new: tuple[torch.Tensor, torch.Tensor]) -> tuple:
    return torch.cat([old[0], new[0]], dim=2), torch.cat([old[1], new[1]], dim=2)
