"""A short two-speaker recording built from dev clips: LibriSpeech speaker 1988, then 2412, then 1988 again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asrforge.audio import load_audio

SAMPLE_RATE = 16_000
PARTS = ("librispeech_1988-24833-0002.wav", "librispeech_2412-153948-0002.wav", "librispeech_1988-24833-0003.wav")
SPEAKERS = ("1988", "2412", "1988")
GAP_S = 0.8


@pytest.fixture(scope="session")
def two_speakers(dev_dir: Path) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """(16 kHz samples, [(start_s, end_s, speaker)] of each part)."""
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    pieces, spans, cursor = [gap], [], gap.size
    for name, speaker in zip(PARTS, SPEAKERS, strict=True):
        clip = load_audio(dev_dir / name)
        spans.append((cursor / SAMPLE_RATE, (cursor + clip.size) / SAMPLE_RATE, speaker))
        pieces += [clip, gap]
        cursor += clip.size + gap.size
    return np.concatenate(pieces), spans


def wav_bytes(samples: np.ndarray) -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
