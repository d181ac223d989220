"""Streaming: encode a stream's audio in 1-s blocks with a block-causal mask and cached past encoder states.

Each block attends to itself and earlier blocks only (Qwen3-ASR: earlier 1-s chunks of its 8-s attention window;
Whisper: earlier blocks of the open window), with every layer's keys/values of finished blocks cached, so a new
chunk costs a constant amount and finished blocks' states never change. It changes the model's attention (Whisper
was trained on full 30-s windows, Qwen3-ASR on full 8-s windows): reports/cpu/streaming.md gives the WER it costs.
Applies to ``stream_session()`` only; offline ``transcribe`` keeps the full-context encoder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class CausalEncoder(Plugin):
    name = "causal_encoder"
    streaming_only = True
    order = 40
    requires = Requirements(engines=frozenset({"whisper", "qwen3_asr"}))

    def apply(self, engine: BaseEngine) -> BaseEngine:
        engine.stream_settings = replace(engine.stream_settings, causal_encoder=True)
        return engine
