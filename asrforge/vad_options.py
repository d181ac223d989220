"""Silero VAD's settings, apart from the detector, so that the settings load without torch (the gateway has none)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VADOptions:
    threshold: float = 0.5  # speech probability at or above which a frame is speech
    min_speech_ms: int = 250  # shorter bursts (clicks, coughs) are not speech
    min_silence_ms: int = 300  # a pause at least this long ends a speech span (file) / an utterance (stream)
    speech_pad_ms: int = 200  # added to each side of a span, so word onsets and tails are not clipped
    onnx: bool = True  # ONNX Runtime (faster on CPU); False: TorchScript
