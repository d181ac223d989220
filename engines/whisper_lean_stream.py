"""The lean engine's incremental decoder for ``IncrementalSession``: live partials on the served model itself.

It computes what the whisper engine's decoder with ``kv_reuse`` computes (engines/whisper_stream.py, full-context
encoder): the open window's audio is encoded plus ``window_margin_s`` of padding (or as a padded 30-s window), the
prompt and the window's fixed tokens are prefilled in one pass, and the rest is decoded greedily under the same
token rules (engines/whisper_stream_tokens.py). Nothing survives a chunk but the fixed text: with a full-context
encoder every encoder state, hence every decoder key and value, changes when audio is added.

Why not leave streaming to the whisper engine on the same weights, as word timestamps are: a partial is a short
decode (a few hundred encoder positions, a handful of tokens), where transformers' per-step Python (cache objects,
masks, module dispatch) is most of a step; here a step is the lean decoder's few tensor calls, and a lean server does
not load a second model for its realtime sessions. The causal encoder (``causal_encoder``) is the whisper engine's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from asrforge.engines.stream_session import IncrementalDecoder, StreamSettings
from asrforge.engines.whisper import trimmed_frames
from asrforge.engines.whisper_stream_tokens import greedy_continuation, suppress_masks, token_budget

if TYPE_CHECKING:
    from asrforge.engines.whisper_lean import WhisperLeanEngine


class LeanIncrementalDecoder(IncrementalDecoder):
    def __init__(self, engine: WhisperLeanEngine, settings: StreamSettings, language: str | None = None):
        if settings.causal_encoder:
            raise ValueError("the lean engine streams with the full-context encoder only (causal_encoder: whisper)")
        self.engine = engine
        self.settings = settings
        special = engine.special
        self.eot = special.eot
        self.prompt = [*engine.init_tokens(language or "en", "transcribe"), special.no_timestamps]
        vocab = engine.model.dims.vocab_size
        self.masks = suppress_masks(vocab, special.eot, special.suppress, special.begin_suppress, engine.device)

    def reset(self) -> None:
        """Nothing to drop: no cache outlives a hypothesis."""

    def text(self, tokens: list[int]) -> str:
        return self.engine.text(tokens)

    def hypothesis(self, audio: np.ndarray, fixed: list[int]) -> list[int]:
        engine = self.engine
        model = engine.model
        with engine.inference_context():
            features = engine.log_mel(np.asarray(audio, dtype=np.float32))
            frames = trimmed_frames(features.shape[-1], self.settings.window_margin_s, engine.window_frames)
            features = F.pad(features[:, :frames], (0, frames - min(frames, features.shape[-1])))
            encoded = model.model.encoder(engine.to_device(features[None], engine.torch_dtype))
            prefix = self.prompt + fixed
            budget = token_budget(len(audio), len(self.prompt), len(fixed), model.dims.max_target_positions)
            caches = model.new_caches(encoded, 1, len(prefix) + budget)
            position = 0

            def step(ids: list[int]) -> torch.Tensor:
                nonlocal position
                logits = model.logits(torch.tensor([[ids]], device=engine.device), caches, position)[0, 0]
                position += len(ids)
                return logits

            return fixed + greedy_continuation(step, prefix, fixed, budget, self.eot, self.masks)
