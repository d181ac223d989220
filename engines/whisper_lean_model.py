"""Whisper's network in plain torch, for the lean engine (engines/whisper_lean.py): no transformers import.

The module tree and parameter names are those of transformers' ``WhisperForConditionalGeneration`` (``model.encoder``,
``model.decoder``, ``layers.N.self_attn.q_proj``...), so the converted checkpoint loads with ``load_state_dict`` and
plugins that transform ``nn.Linear`` layers (int8_dynamic) find the same layers. What differs is the decoder's
layout: a step's hidden states are ``(clips, beams, tokens, width)``, so every ``Linear`` sees one clip's beams as
one sample (one activation scale per clip, as a lone decode has), and cross-attention reads one copy of a clip's
encoder states for all its beams (beam_sharing's layout, here by construction). Attention is SDPA, save where a
plugin gives a decoder layer another ``cross_kernel`` (native_cross_attention).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WhisperDims:
    """The architecture fields of a Whisper ``config.json``."""

    num_mel_bins: int
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    decoder_layers: int
    decoder_attention_heads: int
    decoder_ffn_dim: int
    max_source_positions: int
    max_target_positions: int
    vocab_size: int

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> WhisperDims:
        config = json.loads((Path(checkpoint) / "config.json").read_text())
        unsupported = {
            key: config.get(key)
            for key, plain in (("scale_embedding", False), ("activation_function", "gelu"))
            if config.get(key, plain) != plain
        }
        if unsupported:
            raise ValueError(f"the lean Whisper runtime does not implement {unsupported}")
        return cls(**{name: config[name] for name in cls.__dataclass_fields__})


class Attention(nn.Module):
    """Whisper's attention projections (``k_proj`` has no bias); the attention itself is SDPA."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.scaling = self.head_dim**-0.5
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(..., tokens, width) -> (..., heads, tokens, head_dim)"""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-3, -2).flatten(-2)

    def query(self, h: torch.Tensor) -> torch.Tensor:
        """Scaled before the product, SDPA then at scale 1, as transformers computes it: the same floats, which
        int8 plugins need (one rounding step apart, a dynamically quantized input can change a token)."""
        return self.split(self.q_proj(h) * self.scaling)


class EncoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = Attention(width, heads)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn)
        self.fc2 = nn.Linear(ffn, width)
        self.final_layer_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.self_attn
        h = self.self_attn_layer_norm(x)
        q, k, v = attn.query(h), attn.split(attn.k_proj(h)), attn.split(attn.v_proj(h))
        x = x + attn.out_proj(attn.merge(F.scaled_dot_product_attention(q, k, v, scale=1.0)))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class Encoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        width = dims.d_model
        self.conv1 = nn.Conv1d(dims.num_mel_bins, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(dims.max_source_positions, width)
        self.layers = nn.ModuleList(
            EncoderLayer(width, dims.encoder_attention_heads, dims.encoder_ffn_dim) for _ in range(dims.encoder_layers)
        )
        self.layer_norm = nn.LayerNorm(width)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(clips, mels, frames) -> (clips, frames / 2, width); any even frame count up to the window."""
        x = F.gelu(self.conv1(features))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.embed_positions.weight[: x.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


class SdpaCrossAttention:
    """Cross-attention through torch's SDPA, on keys and values laid out as (clips, heads, frames, head_dim).
    A layer's ``cross_kernel``: native_cross_attention swaps in one that wants another key layout."""

    def prepare(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Contiguous (heads, frames, dim): SDPA's CPU kernel read the strided view at half speed.
        return keys.contiguous(), values.contiguous()

    def __call__(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """q (clips, heads, rows, head_dim) -> (clips, heads, rows, head_dim)"""
        return F.scaled_dot_product_attention(q, keys, values, scale=1.0)


class DecoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, ffn: int):
        super().__init__()
        self.self_attn = Attention(width, heads)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.encoder_attn = Attention(width, heads)
        self.cross_kernel = SdpaCrossAttention()
        self.encoder_attn_layer_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, ffn)
        self.fc2 = nn.Linear(ffn, width)
        self.final_layer_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, cache: LayerCache, position: int) -> torch.Tensor:
        """x: (clips, beams, tokens, width) at positions ``position ...``; writes its keys and values into ``cache``."""
        attn = self.self_attn
        h = self.self_attn_layer_norm(x)
        tokens = x.shape[2]
        cache.keys[:, :, :, position : position + tokens] = attn.split(attn.k_proj(h))
        cache.values[:, :, :, position : position + tokens] = attn.split(attn.v_proj(h))
        end = position + tokens
        clips, beams = x.shape[:2]
        # SDPA on (rows, heads, tokens, dim), the layout its CPU kernels take.
        out = F.scaled_dot_product_attention(
            attn.query(h).flatten(0, 1),
            cache.keys[:, :, :, :end].flatten(0, 1),
            cache.values[:, :, :, :end].flatten(0, 1),
            is_causal=tokens > 1,  # a prompt's prefill starts at 0, so its causal mask is the square one
            scale=1.0,
        )
        x = x + attn.out_proj(attn.merge(out.unflatten(0, (clips, beams))))
        cross = self.encoder_attn
        h = self.encoder_attn_layer_norm(x)
        # A clip's beams x tokens become query positions against the one copy of its encoder states.
        q = cross.query(h.flatten(1, 2))
        out = self.cross_kernel(q, cache.cross_keys, cache.cross_values)
        x = x + cross.out_proj(cross.merge(out).unflatten(1, (beams, tokens)))
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


@dataclass
class LayerCache:
    keys: torch.Tensor  # (clips, beams, heads, max positions, head_dim)
    values: torch.Tensor
    cross_keys: torch.Tensor  # one copy per clip, laid out by the layer's cross_kernel.prepare
    cross_values: torch.Tensor


class Decoder(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        width = dims.d_model
        self.embed_tokens = nn.Embedding(dims.vocab_size, width)
        self.embed_positions = nn.Embedding(dims.max_target_positions, width)
        self.layers = nn.ModuleList(
            DecoderLayer(width, dims.decoder_attention_heads, dims.decoder_ffn_dim) for _ in range(dims.decoder_layers)
        )
        self.layer_norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor, caches: list[LayerCache], position: int) -> torch.Tensor:
        """tokens (clips, beams, n) at positions ``position ...`` -> last hidden states (clips, beams, n, width)."""
        x = self.embed_tokens(tokens) + self.embed_positions.weight[position : position + tokens.shape[-1]]
        for layer, cache in zip(self.layers, caches, strict=True):
            x = layer(x, cache, position)
        return self.layer_norm(x)


class WhisperModel(nn.Module):
    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.encoder = Encoder(dims)
        self.decoder = Decoder(dims)


class LeanWhisper(nn.Module):
    """The whole network; ``proj_out`` (the logits) shares the token embedding's weight, as in the checkpoint."""

    def __init__(self, dims: WhisperDims):
        super().__init__()
        self.dims = dims
        self.model = WhisperModel(dims)
        self.proj_out = nn.Linear(dims.d_model, dims.vocab_size, bias=False)
        self.proj_out.weight = self.model.decoder.embed_tokens.weight

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, dtype: torch.dtype = torch.float32) -> LeanWhisper:
        from safetensors.torch import load_file

        with _without_init():
            model = cls(WhisperDims.from_checkpoint(checkpoint))
        state = load_file(str(Path(checkpoint) / "model.safetensors"))
        state.setdefault("proj_out.weight", state["model.decoder.embed_tokens.weight"])
        model.load_state_dict(state, strict=True, assign=True)
        model.proj_out.weight = model.model.decoder.embed_tokens.weight  # tied again after ``assign``
        return model.to(dtype).eval()

    # The accessors plugins use on transformers models (int8_dynamic quantizes the head through them).
    def get_output_embeddings(self) -> nn.Module:
        return self.proj_out

    def set_output_embeddings(self, head: nn.Module) -> None:
        self.proj_out = head

    def new_caches(self, encoded: torch.Tensor, beams: int, positions: int) -> list[LayerCache]:
        """Empty self-attention caches for ``beams`` rows per clip and each layer's cross-attention keys and values
        of ``encoded`` (clips, frames, width), computed once per window."""
        clips = encoded.shape[0]
        caches = []
        for layer in self.model.decoder.layers:
            cross, attn = layer.encoder_attn, layer.self_attn
            shape = (clips, beams, attn.heads, positions, attn.head_dim)
            cross_keys, cross_values = layer.cross_kernel.prepare(
                cross.split(cross.k_proj(encoded)), cross.split(cross.v_proj(encoded))
            )
            # Self-attention's caches uninitialised: attention reads positions up to the last one written, never beyond.
            caches.append(LayerCache(encoded.new_empty(shape), encoded.new_empty(shape), cross_keys, cross_values))
        return caches

    def logits(self, tokens: torch.Tensor, caches: list[LayerCache], position: int) -> torch.Tensor:
        """Next-token logits (clips, beams, vocab) after ``tokens`` (clips, beams, n) fed at ``position``."""
        hidden = self.model.decoder(tokens, caches, position)[:, :, -1:]
        return self.proj_out(hidden).squeeze(2).float()


@contextlib.contextmanager
def _without_init() -> Iterator[None]:
    """Modules built with uninitialised weights, since the checkpoint replaces them all. Not the meta device: its
    ``normal_`` goes through torch._refs, which imports torch._dynamo (a second of start-up)."""
    saved = {name: getattr(nn.init, name) for name in ("kaiming_uniform_", "uniform_", "normal_")}
    for name in saved:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def reorder_caches(caches: list[LayerCache], source: torch.Tensor, length: int) -> None:
    """Beam search's reorder: row b of each clip takes the first ``length`` positions of row ``source[clip, b]``."""
    clips, beams = source.shape
    if torch.equal(source, torch.arange(beams, device=source.device).expand(clips, -1)):
        return
    # index_select on (clips x beams) rows: a fifth of gather's time with an expanded index here.
    rows = (source + torch.arange(clips, device=source.device)[:, None] * beams).flatten()
    for cache in caches:
        for buffer in (cache.keys, cache.values):
            part = buffer.flatten(0, 1)[:, :, :length]
            part.copy_(part.index_select(0, rows))
