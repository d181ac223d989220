"""The subtitle timing score: which cue shows each utterance's first and last word, and how far off it is."""

from __future__ import annotations

import numpy as np
import pytest

from asrforge.experiments.subtitles.report import render_markdown
from asrforge.experiments.subtitles.scoring import boundary_errors, speech_bounds, summary_ms, utterance_of_words

UTTERANCES = [
    {"start": 0.5, "end": 3.0, "text": "And so, my fellow Americans:"},
    {"start": 4.0, "end": 7.0, "text": "ask not what your country can do for you."},
]
BOUNDS = [(u["start"], u["end"]) for u in UTTERANCES]
SRT = """1
00:00:00,600 --> 00:00:02,900
And so my fellow
Americans

2
00:00:04,200 --> 00:00:06,500
ask not what your country
can do for you
"""


def test_each_utterance_is_scored_by_the_cues_of_its_first_and_last_words():
    errors = boundary_errors(SRT, UTTERANCES, BOUNDS)
    assert errors.start == pytest.approx([0.1, 0.2])
    assert errors.end == pytest.approx([0.1, 0.5])
    summary = summary_ms(errors)
    assert summary["mean_ms"] == pytest.approx(225.0) and summary["start_median_ms"] == pytest.approx(150.0)
    assert summary["boundaries"] == 4 and summary["utterances_missed"] == 0


def test_a_cue_running_over_an_utterance_boundary_is_charged_the_whole_distance():
    merged = "1\n00:00:00,600 --> 00:00:06,500\nAnd so my fellow Americans ask not what\n\n"
    merged += "2\n00:00:06,500 --> 00:00:06,900\nyour country can do for you\n"
    errors = boundary_errors(merged, UTTERANCES, BOUNDS)
    assert errors.end[0] == pytest.approx(3.5)  # utterance 1 ends inside a cue that runs to 6.5 s
    assert errors.start[1] == pytest.approx(3.4)  # utterance 2 starts inside a cue that began at 0.6 s


def test_misrecognised_words_belong_to_the_utterance_around_them():
    owners = utterance_of_words(["and", "sew", "my", "fellow", "americans", "ask", "knot", "what"], UTTERANCES)
    assert owners == [0, 0, 0, 0, 0, 1, 1, 1]


def test_a_misrecognised_first_word_still_opens_its_own_utterance():
    utterances = [{"text": "it was late"}, {"text": "fourteen fifty was the year"}]
    assert utterance_of_words(["it", "was", "late", "1450", "was", "the", "year"], utterances) == [0, 0, 0, 1, 1, 1, 1]


def test_an_utterance_with_no_recognised_word_is_counted_as_missed_not_scored():
    only_first = "1\n00:00:00,600 --> 00:00:02,900\nAnd so my fellow Americans\n"
    summary = summary_ms(boundary_errors(only_first, UTTERANCES, BOUNDS))
    assert summary["utterances_missed"] == 1 and summary["boundaries"] == 2
    assert summary_ms(boundary_errors("", UTTERANCES, BOUNDS))["mean_ms"] is None


def test_speech_bounds_skip_the_silence_inside_an_utterance():
    audio = np.zeros(16_000 * 3, np.float32)
    audio[8_000:40_000] = 0.5 * np.sin(np.arange(32_000) * 0.3)
    start, end = speech_bounds(audio, 0.0, 3.0)
    assert start == pytest.approx(0.5, abs=0.011) and end == pytest.approx(2.5, abs=0.011)


def test_the_report_judges_each_mode_against_the_issue_goals():
    def row(mode: str, speech_ms: float, overhead: float) -> dict:
        error = {**summary_ms(boundary_errors(SRT, UTTERANCES, BOUNDS)), "mean_ms": speech_ms}
        return {
            "kind": "long", "mode": mode, "timestamp": "t", "commit": "c", "origin": "o", "file": "f.wav",
            "device": {"name": "cpu"}, "combination": {"engine": "e", "model": "m", "plugins": []},
            "alignment": None, "audio_s": 9.0, "utterances": 2, "chunks": 1, "cues": 2, "vad_s": 0.1,
            "latency_s": {"median": 1.0, "trials": [1.0]}, "after_decode_s": 0.0, "overhead_ratio": overhead,
            "error_vs_manifest": error, "error_vs_speech": error,
        }  # fmt: skip

    fast = {**row("fast", 250, 0.98), "after_decode_s": 0.02}  # 20 ms of timing after a 1-s decode
    text = render_markdown([row("none", 400, 1.0), fast, row("accurate", 120, 1.3)])
    assert "- **accurate**: mean boundary error 120 ms vs speech (missed)" in text
    assert "- **fast**: mean boundary error 250 ms vs speech (met)" in text
    assert "work added to the same decode 1.020x (met; goal < 5 %)" in text
