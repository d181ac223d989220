"""Values every side of the project shares, defined once."""

from __future__ import annotations

# Every model here (Whisper, Qwen3-ASR, Silero VAD) takes 16 kHz mono audio; the audio module resamples to it.
SAMPLE_RATE = 16_000

# Languages written without spaces between words (Korean does use spaces): chunk texts and word pieces join with "".
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})


def is_unspaced(language: str | None) -> bool:
    """True for a language (ISO code, any region suffix: ``zh-TW``) written without spaces between words."""
    return (language or "").lower().split("-")[0] in UNSPACED_LANGUAGES
