"""The diarization stage on real speech: embeddings tell two LibriSpeech speakers apart, clustering counts them,
and a transcript's segments are split where the speaker changes."""

from __future__ import annotations

import numpy as np
import pytest

from asrforge.diarization import Diarization, DiarizationOptions, Turn, attribute_speakers, diarize
from asrforge.diarization.clustering import cluster_speakers
from asrforge.diarization.encoder import embed_pieces, mel_frames
from asrforge.diarization.render import render_diarized
from asrforge.diarization.turns import split_spans
from asrforge.transcript import Segment, Transcript, Word
from asrforge.vad import SpeechDetector


def _spans(samples: np.ndarray) -> list[tuple[int, int]]:
    return SpeechDetector().speech_spans(samples)


def test_mel_frames_follow_librosas_framing():
    frames = mel_frames(np.zeros(16_000, dtype=np.float32))
    assert frames.shape == (101, 40)  # centred frames: 1 + samples // hop


def test_same_speaker_is_closer_than_another(two_speakers):
    samples, parts = two_speakers
    pieces = [(int(a * 16_000), int(b * 16_000)) for a, b, _ in parts]
    first, other, again = embed_pieces(samples, pieces)
    assert np.linalg.norm(first) == pytest.approx(1.0, abs=1e-5)
    assert first @ again > first @ other + 0.1


def test_two_speakers_are_found_and_the_first_comes_back(two_speakers):
    samples, parts = two_speakers
    found = diarize(samples, _spans(samples))
    assert found.speakers == ["A", "B"]
    middle = [found.speaker_at((a + b) / 2 - 0.3, (a + b) / 2 + 0.3) for a, b, _ in parts]
    assert middle == ["A", "B", "A"]


def test_speaker_bounds_override_the_threshold(two_speakers):
    samples, _ = two_speakers
    spans = _spans(samples)
    assert len(diarize(samples, spans, DiarizationOptions(max_speakers=1)).speakers) == 1
    assert len(diarize(samples, spans, DiarizationOptions(min_speakers=3)).speakers) == 3


def test_clustering_counts_directions_and_orders_by_first_appearance():
    rng = np.random.default_rng(0)
    axes = np.eye(8)[[2, 5, 2, 7, 5, 2]]
    points = axes + rng.normal(0, 0.05, axes.shape)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert cluster_speakers(points).tolist() == [0, 1, 0, 2, 1, 0]
    assert len(set(cluster_speakers(points, max_speakers=2))) == 2
    with pytest.raises(ValueError):
        DiarizationOptions(min_speakers=3, max_speakers=2)


def test_split_spans_cuts_long_speech_into_equal_pieces():
    assert split_spans([(0, 16_000 * 7)], 3.2) == [(0, 37333), (37333, 74667), (74667, 112000)]
    assert split_spans([(100, 200)], 3.2) == [(100, 200)]


def _words(*items: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(start, end, text) for text, start, end in items)


def test_a_segment_spanning_two_speakers_is_split_at_the_change():
    words = _words((" Hello", 0.0, 0.5), (" there.", 0.5, 1.0), (" Hi", 1.6, 1.9), (" back.", 1.9, 2.3))
    transcript = Transcript("Hello there. Hi back.", "en", 3.0, [Segment(0, 0.0, 2.3, " Hello there. Hi back.", words)])
    turns = Diarization([Turn(0.0, 1.2, "A"), Turn(1.4, 2.5, "B")], ["A", "B"], np.zeros((2, 256)))
    segments = attribute_speakers(transcript, turns).segments
    assert [(s.id, s.speaker, s.text, s.start, s.end) for s in segments] == [
        (0, "A", "Hello there.", 0.0, 1.0),
        (1, "B", "Hi back.", 1.6, 2.3),
    ]
    srt = render_diarized(attribute_speakers(transcript, turns), "srt")
    vtt = render_diarized(attribute_speakers(transcript, turns), "vtt")
    assert "A: Hello there." in srt and "B: Hi back." in srt
    assert "<v A>Hello there." in vtt and "<v B>Hi back." in vtt


def test_known_references_name_the_clusters(two_speakers, dev_dir):
    from asrforge.audio import load_audio

    samples, _ = two_speakers
    references = {  # other recordings of the same two readers, in the opposite order of appearance
        "reader-2412": load_audio(dev_dir / "librispeech_2412-153948-0001.wav")[: 16_000 * 8],
        "reader-1988": load_audio(dev_dir / "librispeech_1988-24833-0000.wav"),
    }
    found = diarize(samples, _spans(samples), references=references)
    assert found.speakers == ["reader-1988", "reader-2412"]


def test_no_speech_gives_no_turns():
    found = diarize(np.zeros(16_000, dtype=np.float32), [])
    assert found.turns == [] and found.speakers == []
