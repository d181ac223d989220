"""Streaming: keep the caches of a stream's fixed prefix across chunks, so a chunk recomputes only what is new.

Switches ``stream_session()`` from re-feeding all audio to an ``IncrementalSession`` (engines/stream_session.py):
text is fixed when ``stable_chunks`` consecutive hypotheses agree on it, the window is committed at a VAD pause or
after ``max_window_s``. What each model can reuse (the modules say why): Qwen3-ASR keeps the LLM's KV cache of
the prompt and of every final audio token, rolled back to that point after each hypothesis; Whisper keeps the
cross-attention keys/values of final encoder states (with ``causal_encoder``) and prefills the fixed text in one
pass, but not the fixed text's self-attention cache, which depends on every encoder state; the lean Whisper engine
does the same on its own model (full-context encoder only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.optimizations.encoder_window import MIN_MARGIN_S


@register
@dataclass(frozen=True)
class KVReuse(Plugin):
    name = "kv_reuse"
    streaming_only = True
    order = 40
    requires = Requirements(engines=frozenset({"whisper", "whisper_lean", "qwen3_asr"}))

    stable_chunks: int = 2  # a token is fixed once this many consecutive hypotheses agree on it
    max_window_s: float = 24.0  # commit the open window after this long without a pause (Whisper's window is 30 s)
    # Whisper without causal_encoder: a chunk encodes the window's audio plus this margin, not a padded 30-s window
    # (encoder_window's audio_ctx trim). None: the full window. Seen on dev clips (tests/engines/test_stream_session.py
    # 's two pairs of utterances, 2-s chunks): margins of 1-3 s turned JFK's short first window "Ask not" into "S-0"
    # (6.5 WER points against offline), 5 s read it as the full window does, at about half the full window's time
    # (2.5 s against 5.0 s for 16 s of audio; 1 s: 2.0 s).
    window_margin_s: float | None = 5.0

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if self.stable_chunks < 1:
            return "kv_reuse: stable_chunks must be at least 1"
        if target.engine in ("whisper", "whisper_lean") and not 0 < self.max_window_s <= 28:
            return "kv_reuse: max_window_s must be in (0, 28] for Whisper (a chunk more must fit its 30-s window)"
        if self.window_margin_s is not None and self.window_margin_s < MIN_MARGIN_S:
            return (
                f"kv_reuse: window_margin_s {self.window_margin_s} is below {MIN_MARGIN_S} s, where a trimmed window "
                "cut transcripts short (reports/cpu/shrink.md)"
            )
        return None

    def apply(self, engine: BaseEngine) -> BaseEngine:
        engine.stream_settings = replace(
            engine.stream_settings,
            kv_reuse=True,
            stable_chunks=self.stable_chunks,
            max_window_s=self.max_window_s,
            window_margin_s=self.window_margin_s,
        )
        return engine
