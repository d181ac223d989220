"""Subtitles and word timestamps through the real server and the real ``openai`` client: SRT/WebVTT that real
parsers accept, cues that start where the speech starts, verbose_json words, and the timing method named."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import openai
import pytest
import srt
import webvtt

from asrforge.audio import load_audio
from asrforge.combination import Combination
from asrforge.engines.base import DecodeOptions
from asrforge.subtitles.alignment import plan_timing
from asrforge.subtitles.options import SubtitleOptions

FIRST, SECOND = "ljspeech_LJ001-0013.wav", "ljspeech_LJ001-0011.wav"
PAUSE_S = 1.0
# LJ Speech clips hold 10-20 ms of silence before the voice and about 0.1 s after it.
LEAD_S, TRAIL_S = 0.02, 0.1
ACCURATE_GOAL_S = 0.15  # the benchmark's goal is 0.1 s on average; one boundary may miss it a little
FAST_GOAL_S = 0.3


@pytest.fixture(scope="module")
def two_sentences(dev_dir: Path) -> tuple[bytes, float, float]:
    """Two real utterances with a second of silence between: (wav bytes, end of the first speech, start of the
    second)."""
    first, second = load_audio(dev_dir / FIRST), load_audio(dev_dir / SECOND)
    samples = np.concatenate([first, np.zeros(int(PAUSE_S * 16_000), np.float32), second])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    first_s = len(first) / 16_000
    return buffer.getvalue(), first_s - TRAIL_S, first_s + PAUSE_S + LEAD_S


def client_of(live) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def seconds(timestamp: str) -> float:
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def test_accurate_srt_cues_start_and_end_with_the_speech(server, two_sentences):
    audio, first_end, second_start = two_sentences
    body = client_of(server).audio.transcriptions.create(
        file=("two.wav", audio), model="whisper-1", response_format="srt"
    )
    cues = list(srt.parse(body))
    assert len(cues) >= 2 and all(a.end <= b.start for a, b in zip(cues, cues[1:], strict=False))
    second = min(cues, key=lambda c: abs(c.start.total_seconds() - second_start))
    assert abs(second.start.total_seconds() - second_start) <= ACCURATE_GOAL_S
    before = cues[cues.index(second) - 1]
    assert abs(before.end.total_seconds() - first_end) <= ACCURATE_GOAL_S
    assert all(len(line) <= 42 for cue in cues for line in cue.content.splitlines() if " " in line)


def test_verbose_json_words_are_aligned_monotonic_and_inside_their_segments(server, two_sentences):
    audio, _, second_start = two_sentences
    result = client_of(server).audio.transcriptions.create(
        file=("two.wav", audio), model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"]
    )
    body = result.model_dump()
    assert body["alignment"] == {"mode": "accurate", "method": "whisper-cross-attention-dtw"}
    words = result.words
    assert " ".join(w.word.strip() for w in words).split() == result.text.split()
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:], strict=False))
    for word in words:
        assert any(s.start - 1e-6 <= word.start and word.end <= s.end + 1e-6 for s in result.segments), word
    assert min(abs(w.start - second_start) for w in words) <= ACCURATE_GOAL_S


def test_fast_mode_vtt_uses_no_aligner_and_still_finds_the_second_sentence(make_server, two_sentences):
    audio, _, second_start = two_sentences
    with make_server(subtitles={"mode": "fast"}) as live:
        client = client_of(live)
        body = client.audio.transcriptions.create(file=("two.wav", audio), model="whisper-1", response_format="vtt")
        verbose = client.audio.transcriptions.create(
            file=("two.wav", audio), model="whisper-1", response_format="verbose_json", timestamp_granularities=["word"]
        )
    captions = webvtt.from_buffer(io.StringIO(body))
    assert min(abs(seconds(c.start) - second_start) for c in captions) <= FAST_GOAL_S
    assert verbose.model_dump()["alignment"] == {"mode": "fast", "method": "heuristic"}


@pytest.fixture(scope="module")
def qwen3_tiny():
    return Combination.named("qwen3-asr-tiny", device="cpu").load()


def test_qwen3_without_aligner_weights_falls_back_to_fast_and_says_why(qwen3_tiny, make_server, jfk_bytes, tmp_path):
    missing = str(tmp_path / "no-aligner-here")
    plan = plan_timing(qwen3_tiny, DecodeOptions(), SubtitleOptions(qwen3_aligner=missing))
    assert plan.alignment.method == "heuristic" and missing in plan.alignment.fallback_reason
    with make_server(qwen3_tiny) as live:
        client = client_of(live)
        verbose = client.audio.transcriptions.create(
            file=("jfk.wav", jfk_bytes), model=qwen3_tiny.model_name, response_format="verbose_json",
            timestamp_granularities=["word"],
        )  # fmt: skip
        body = client.audio.transcriptions.create(
            file=("jfk.wav", jfk_bytes), model=qwen3_tiny.model_name, response_format="srt"
        )
    alignment = verbose.model_dump()["alignment"]
    assert alignment["mode"] == "accurate" and alignment["method"] == "heuristic"
    assert "Qwen3-ForcedAligner weights were not supplied" in alignment["fallback_reason"]
    list(srt.parse(body))  # random weights say nothing sensible, but the file is still valid SRT
