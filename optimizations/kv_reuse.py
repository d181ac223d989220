"""Streaming: keep the caches of a stream's fixed prefix across chunks, so a chunk recomputes only what is new.

Switches ``stream_session()`` from re-feeding all audio to an ``IncrementalSession`` (engines/stream_session.py):
text is fixed when ``stable_chunks`` consecutive hypotheses agree on it, the window is committed at a VAD pause or
after ``max_window_s``. What each model can reuse (the modules say why): Qwen3-ASR keeps the LLM's KV cache of
the prompt and of every final audio token, rolled back to that point after each hypothesis; Whisper keeps the
cross-attention keys/values of final encoder states (with ``causal_encoder``) and prefills the fixed text in one
pass, but not the fixed text's self-attention cache, which depends on every encoder state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register


@register
@dataclass(frozen=True)
class KVReuse(Plugin):
    name = "kv_reuse"
    streaming_only = True
    order = 40
    requires = Requirements(engines=frozenset({"whisper", "qwen3_asr"}))

    stable_chunks: int = 2  # a token is fixed once this many consecutive hypotheses agree on it
    max_window_s: float = 24.0  # commit the open window after this long without a pause (Whisper's window is 30 s)

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if self.stable_chunks < 1:
            return "kv_reuse: stable_chunks must be at least 1"
        if target.engine == "whisper" and not 0 < self.max_window_s <= 28:
            return "kv_reuse: max_window_s must be in (0, 28] for Whisper (a chunk more must fit its 30-s window)"
        return None

    def apply(self, engine: BaseEngine) -> BaseEngine:
        engine.stream_settings = replace(
            engine.stream_settings, kv_reuse=True, stable_chunks=self.stable_chunks, max_window_s=self.max_window_s
        )
        return engine
