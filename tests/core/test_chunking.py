"""Long audio in window-sized chunks cut at silence, and one transcript stitched back on the file's clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asrforge.audio import load_audio
from asrforge.chunking import Chunk, plan_chunks, stitch
from asrforge.experiments.scoring import score
from asrforge.transcript import Segment, Transcript, Word
from asrforge.vad import SpeechDetector

SR = 16_000
WINDOW_S = 30.0  # Whisper's window
# dev/ scores ~3.9 % with tiny.en clip by clip; chunking at pauses may cost a little, not double it.
MAX_WER = 8.0


@pytest.fixture(scope="module")
def recording(long_once: tuple[Path, dict]) -> dict:
    """The 248-s concatenation's manifest record (reference text, utterance times) and its samples."""
    path, record = long_once
    return {**record, "samples": load_audio(path)}


@pytest.fixture(scope="module")
def spans(recording: dict) -> list[tuple[int, int]]:
    return SpeechDetector().speech_spans(recording["samples"])


@pytest.fixture(scope="module")
def chunks(recording: dict, spans: list[tuple[int, int]]) -> list[Chunk]:
    audio = recording["samples"]
    return plan_chunks(spans, audio.size, WINDOW_S, audio=audio)


def test_chunks_fit_the_window_and_cover_all_speech(chunks, spans, recording) -> None:
    assert all(0 < chunk.end - chunk.start <= WINDOW_S * SR for chunk in chunks)
    assert chunks[0].start >= 0 and chunks[-1].end <= recording["samples"].size
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))
    for start, end in spans:
        covered = sum(max(0, min(end, c.end) - max(start, c.start)) for c in chunks)
        assert covered == end - start, f"speech at {start / SR:.2f} s is not in any chunk"


def test_cuts_fall_in_silence_between_utterances(chunks, spans, recording) -> None:
    boundaries = {c.start for c in chunks} | {c.end for c in chunks}
    assert not [b / SR for b in boundaries if any(start < b < end for start, end in spans)], "a cut inside speech"
    for u in recording["utterances"]:
        inside = [c for c in chunks if c.end > u["start"] * SR and c.start < u["end"] * SR]
        if u["end"] - u["start"] <= WINDOW_S:
            assert len(inside) == 1, f"the {u['end'] - u['start']:.1f} s utterance at {u['start']:.2f} s is cut"
        else:  # the 35.5 s Harvard sentences: cut once, at a pause between sentences (above)
            assert len(inside) == 2


def test_a_span_longer_than_the_window_is_cut_at_a_pause(spans, recording) -> None:
    # Treat the 35.5 s recording of ten sentences as one span: the cut must still land between two sentences.
    audio = recording["samples"]
    longest = max(recording["utterances"], key=lambda u: u["end"] - u["start"])
    span = (int(longest["start"] * SR), int(longest["end"] * SR))
    first, second = plan_chunks([span], audio.size, WINDOW_S, audio=audio)
    assert first.start == span[0] and first.end == second.start and second.end == span[1]
    assert 0.8 * WINDOW_S * SR <= first.end - first.start <= WINDOW_S * SR
    assert not any(start < first.end < end for start, end in spans), "cut inside a sentence"


def test_plans_without_audio_and_at_the_edges() -> None:
    assert plan_chunks([], 60 * SR, WINDOW_S) == []
    assert plan_chunks([(0, 75 * SR)], 75 * SR, WINDOW_S) == [
        Chunk(0, 25 * SR),
        Chunk(25 * SR, 50 * SR),
        Chunk(50 * SR, 75 * SR),
    ]
    # Spans running past the end, overlapping, or unsorted are clipped into order.
    total = 40 * SR
    planned = plan_chunks([(39 * SR, 41 * SR), (2 * SR, 5 * SR), (4 * SR, 12 * SR)], total, WINDOW_S)
    assert planned == [Chunk(2 * SR, 12 * SR), Chunk(39 * SR, total)]
    # Four 6 s sentences: the chunk ends at the widest pause late in the window, not after the last that fits.
    sentences = [(0, 6 * SR), (7 * SR, 13 * SR), (14 * SR, 20 * SR), (23 * SR, 29 * SR), (29 * SR + 8000, 35 * SR)]
    assert plan_chunks(sentences, 36 * SR, WINDOW_S) == [Chunk(0, 20 * SR), Chunk(23 * SR, 35 * SR)]
    with pytest.raises(ValueError):
        plan_chunks(sentences, 36 * SR, 0)


def test_stitch_shifts_renumbers_and_joins() -> None:
    chunks = [Chunk(0, 2 * SR), Chunk(10 * SR, 13 * SR), Chunk(20 * SR, 21 * SR), Chunk(30 * SR, 32 * SR)]
    parts = [
        Transcript("你好", "zh", 2.0, [Segment(0, 0.0, 1.5, "你好", (Word(0.1, 0.5, "你"),))], 2, {"total_s": 1.0}),
        Transcript("世界", None, 3.0, [], 1, {"total_s": 0.5, "encode_s": 0.25}),
        Transcript("", "zh", 1.0, [], 0, {"total_s": 0.25}),  # silence after all: no text, no segment
        Transcript("再见", "zh", 2.0, [Segment(0, 0.25, 1.0, "再见")], 2, {"total_s": 0.5}),
    ]
    whole = stitch(chunks, parts, duration_s=40.0)
    assert whole.text == "你好世界再见" and whole.language == "zh" and whole.duration_s == 40.0
    assert [(s.id, s.start, s.end, s.text) for s in whole.segments] == [
        (0, 0.0, 1.5, "你好"),
        (1, 10.0, 13.0, "世界"),
        (2, 30.25, 31.0, "再见"),
    ]
    assert whole.segments[0].words == (Word(0.1, 0.5, "你"),)
    assert whole.num_tokens == 5 and whole.timings == {"total_s": 2.25, "encode_s": 0.25}
    english = [Transcript("Hello there.", "en", 2.0), Transcript("General Kenobi.", "en", 3.0)]
    assert stitch(chunks[:2], english, 13.0).text == "Hello there. General Kenobi."
    with pytest.raises(ValueError):
        stitch(chunks, english, 40.0)


def test_long_file_transcribed_in_chunks(tiny_engine, chunks, recording) -> None:
    audio = recording["samples"]
    pieces = [chunk.audio(audio) for chunk in chunks]
    assert all(np.shares_memory(piece, audio) for piece in pieces), "chunks must be views, not copies"
    transcripts = [t for first in range(0, len(pieces), 8) for t in tiny_engine.transcribe(pieces[first : first + 8])]
    whole = stitch(chunks, transcripts, duration_s=audio.size / SR)

    wer = score([recording["text"]], [whole.text], ["en"]).wer
    assert wer <= MAX_WER, f"WER {wer:.2f} % over the stitched transcript"
    assert whole.language == "en" and whole.duration_s == pytest.approx(247.777, abs=0.01)
    assert [s.id for s in whole.segments] == list(range(len(whole.segments)))
    previous_end = 0.0
    for segment in whole.segments:
        assert previous_end <= segment.start < segment.end <= whole.duration_s
        previous_end = segment.end
        middle = (segment.start + segment.end) / 2
        assert any(u["start"] - 0.5 <= middle <= u["end"] + 0.5 for u in recording["utterances"]), segment
    assert whole.segments[-1].end > 240  # times are on the file's clock, not the last chunk's
