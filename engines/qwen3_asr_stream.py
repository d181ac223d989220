"""Qwen3-ASR's incremental decoder for ``IncrementalSession``: a decoder-only LLM with the audio in its prompt.

The prompt is ``<|im_start|>system…<|audio_start|>`` + audio tokens + ``<|audio_end|>…assistant\\n`` + text. Audio
tokens whose embeddings can no longer change are *final*; ``[prefix + final audio tokens]`` is a true prefix of
every later hypothesis of the window, so with ``kv_reuse`` its KV cache is kept across chunks and rolled back
(``DynamicCache.crop``) to its end after each hypothesis; only the new audio tokens, the prompt's tail, the fixed
text and the unfixed tail are computed per chunk. The fixed text itself cannot keep its cache: it comes after the
audio, so one new audio token moves it; it is re-prefilled in one parallel pass, never decoded again.

Which audio tokens are final: the encoder convolves 1-s chunks (13 tokens) and attends within windows of
``n_window_infer`` frames (8 s, 104 tokens). With the full-context encoder, tokens of finished 8-s windows are
final (later audio never enters their attention window). With ``causal_encoder``, attention inside a window is
block-causal over the 1-s chunks, with each layer's keys/values of finished chunks cached, so every finished 1-s
chunk is final and a chunk costs a constant amount. Final embeddings are kept, not recomputed: later audio could
otherwise change them through the feature extractor's whole-clip normalisation (``log_spec.max() - 8``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DynamicCache

from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import DecodeOptions
from asrforge.engines.qwen3_asr import LANGUAGE_CODE_TO_NAME, Qwen3ASREngine
from asrforge.engines.stream_session import IncrementalDecoder, StreamSettings, rollback


class CausalQwenAudioEncoder:
    """Qwen3-ASR's audio tower + projector run one 1-s chunk at a time, block-causal inside each attention window."""

    def __init__(self, engine: Qwen3ASREngine):
        self.tower = engine.encoder_module()
        self.projector = engine.model.model.multi_modal_projector
        self.chunk_frames = 2 * self.tower.n_window
        self.chunks_per_window = self.tower.n_window_infer // self.chunk_frames
        self.reset()

    def reset(self) -> None:
        self._keys: list[torch.Tensor | None] = [None] * len(self.tower.layers)
        self._values: list[torch.Tensor | None] = [None] * len(self.tower.layers)
        self._embeds: list[torch.Tensor] = []  # projected embeddings of finished chunks
        self.finished_chunks = 0

    @property
    def final_tokens(self) -> int:
        return sum(e.shape[0] for e in self._embeds)

    def encode(self, features: torch.Tensor, frames: int) -> torch.Tensor:
        """Audio embeddings (tokens, hidden) for the window's ``frames`` valid mel frames; finished chunks cached."""
        while (self.finished_chunks + 1) * self.chunk_frames <= frames:
            start = self.finished_chunks * self.chunk_frames
            if self.finished_chunks % self.chunks_per_window == 0:  # a new attention window sees nothing before
                self._keys = [None] * len(self._keys)
                self._values = [None] * len(self._values)
            self._embeds.append(self._chunk(features[..., start : start + self.chunk_frames], self.chunk_frames, True))
            self.finished_chunks += 1
        start = self.finished_chunks * self.chunk_frames
        tail = []
        if frames > start:
            if self.finished_chunks % self.chunks_per_window == 0:
                self._keys = [None] * len(self._keys)
                self._values = [None] * len(self._values)
            chunk = F.pad(features[..., start:frames], (0, self.chunk_frames - (frames - start)))
            tail = [self._chunk(chunk, frames - start, False)]
        return torch.cat(self._embeds + tail)

    def _chunk(self, features: torch.Tensor, valid: int, keep: bool) -> torch.Tensor:
        """One chunk through the tower's convolutions (as ``Qwen3ASREncoder.forward`` does per chunk), its layers
        with cached keys/values of earlier chunks of the window, ``ln_post`` and the projector."""
        tower = self.tower
        x = features.reshape(1, 1, features.shape[-2], self.chunk_frames).to(tower.conv2d1.weight.dtype)
        x = F.gelu(tower.conv2d3(F.gelu(tower.conv2d2(F.gelu(tower.conv2d1(x))))))
        _, channels, bins, steps = x.shape
        x = tower.conv_out(x.permute(0, 3, 1, 2).reshape(1, steps, channels * bins))
        x = x + tower.positional_embedding.positional_embedding[:steps].to(x.dtype)
        tokens = int(tower._post_cnn_length(torch.tensor([valid])))
        hidden = x[0, :tokens]
        for index, layer in enumerate(tower.layers):
            hidden = self._layer(index, layer, hidden, keep)
        return self.projector(tower.ln_post(hidden))

    def _layer(self, index: int, layer: torch.nn.Module, hidden: torch.Tensor, keep: bool) -> torch.Tensor:
        """``Qwen3ASRAudioEncoderLayer.forward`` with the chunk attending to cached keys/values of earlier chunks
        (the upstream layer attends within ``cu_seqlens`` windows and has no cache, so its lines are written out)."""
        attention = layer.self_attn
        length = hidden.shape[0]
        normed = layer.self_attn_layer_norm(hidden)

        def heads(projection: torch.nn.Module) -> torch.Tensor:
            return projection(normed).reshape(length, attention.num_heads, -1).transpose(0, 1).unsqueeze(0)

        query, key, value = heads(attention.q_proj), heads(attention.k_proj), heads(attention.v_proj)
        past_key, past_value = self._keys[index], self._values[index]
        keys = key if past_key is None else torch.cat([past_key, key], dim=2)
        values = value if past_value is None else torch.cat([past_value, value], dim=2)
        if keep:
            self._keys[index], self._values[index] = keys, values
        attended = F.scaled_dot_product_attention(query, keys, values, scale=attention.scaling)
        hidden = hidden + attention.out_proj(attended[0].transpose(0, 1).reshape(length, -1))
        feed_forward = layer.fc2(layer.activation_fn(layer.fc1(layer.final_layer_norm(hidden))))
        return hidden + feed_forward


class Qwen3ASRIncrementalDecoder(IncrementalDecoder):
    def __init__(self, engine: Qwen3ASREngine, settings: StreamSettings, options: DecodeOptions):
        self.engine = engine
        self.settings = settings
        self.language = LANGUAGE_CODE_TO_NAME[options.language] if options.language else None
        self.prompt = options.prompt
        eos = engine.model.generation_config.eos_token_id
        self.eos = {eos} if isinstance(eos, int) else set(eos)
        self.encoder = CausalQwenAudioEncoder(engine) if settings.causal_encoder else None
        self.reset()

    def reset(self) -> None:
        if self.encoder is not None:
            self.encoder.reset()
        self._final_embeds: list[torch.Tensor] = []  # full-context path: embeddings of finished 8-s windows
        self._final_frames = 0
        self._cache: DynamicCache | None = None
        self._cached = 0  # positions of [prefix + final audio tokens] held in the cache

    def text(self, tokens: list[int]) -> str:
        return self.engine.processor.decode(tokens, return_format="parsed")["transcription"]

    def hypothesis(self, audio: np.ndarray, fixed: list[int]) -> list[int]:
        engine = self.engine
        request = engine.processor.apply_transcription_request(
            audio=audio, language=self.language, prompt=self.prompt, sanitize_control_tokens=True
        )
        ids = request["input_ids"][0].tolist()
        audio_token = engine.model.config.audio_token_id
        first = ids.index(audio_token)
        last = len(ids) - ids[::-1].index(audio_token)
        with engine.inference_context():
            embeds, final = self._audio_embeddings(request)
            if embeds.shape[0] != last - first:
                raise RuntimeError(f"{embeds.shape[0]} audio embeddings for {last - first} audio tokens")
            table = engine.model.get_input_embeddings()
            text = torch.tensor(ids[:first] + ids[last:] + fixed, device=engine.device)
            text_embeds = table(text)
            sequence = torch.cat([text_embeds[:first], embeds.to(text_embeds.dtype), text_embeds[first:]])
            keep = first + final  # [prefix + final audio tokens]: the same in every later hypothesis
            if not self.settings.kv_reuse or self._cache is None:
                self._cache, self._cached = DynamicCache(config=engine.model.config.get_text_config()), 0
            budget = engine.max_new_tokens(len(audio) / SAMPLE_RATE)
            generated = self._greedy(sequence[self._cached :].unsqueeze(0), budget - len(fixed))
            rollback(self._cache, keep)
            self._cached = keep
        return fixed + generated

    def _audio_embeddings(self, request: dict) -> tuple[torch.Tensor, int]:
        """The window's audio embeddings and how many of them are final."""
        engine = self.engine
        features = engine.to_device(request["input_features"], engine.torch_dtype)
        mask = engine.to_device(request["input_features_mask"])
        frames = int(mask.sum())
        if self.encoder is not None:
            return self.encoder.encode(features, frames), self.encoder.final_tokens
        # Full context: encode from the first unfinished 8-s window on (windows never see each other).
        tower = engine.encoder_module()
        start = self._final_frames
        open_embeds = features.new_zeros((0, engine.model.config.text_config.hidden_size))
        if frames > start:
            open_embeds = engine.model.model.get_audio_features(features[..., start:], mask[..., start:]).pooler_output
        finished = (frames // tower.n_window_infer) * tower.n_window_infer
        if finished > start:  # windows that finished in this chunk: their embeddings are final from now on
            tokens = _tokens_for_frames(tower, finished - start)
            self._final_embeds.append(open_embeds[:tokens])
            self._final_frames = finished
            open_embeds = open_embeds[tokens:]
        final = sum(e.shape[0] for e in self._final_embeds)
        return torch.cat([*self._final_embeds, open_embeds]), final

    def _greedy(self, embeds: torch.Tensor, budget: int) -> list[int]:
        """Prefill ``embeds`` after the cached prefix, then decode greedily until EOS or ``budget``. EOS is left out:
        two hypotheses ending alike would otherwise fix it, and later hypotheses would be forced to decode past it."""
        model = self.engine.model
        generated: list[int] = []
        while len(generated) < max(budget, 0):
            hidden = model.model.language_model(inputs_embeds=embeds, cache=self._cache, use_cache=True)
            token = int(model.lm_head(hidden.last_hidden_state[:, -1]).argmax(-1))
            if token in self.eos:
                break
            generated.append(token)
            embeds = model.get_input_embeddings()(torch.tensor([[token]], device=self.engine.device))
        return generated


def _tokens_for_frames(tower: torch.nn.Module, frames: int) -> int:
    """Audio tokens of ``frames`` valid mel frames that fill whole 1-s chunks."""
    chunk = 2 * tower.n_window
    return int(tower._post_cnn_length(torch.tensor([chunk]))) * (frames // chunk)
