"""Response formats must parse with real subtitle parsers and carry the transcript's timing."""

from __future__ import annotations

import io
import json

import pytest
import srt
import webvtt

from asrforge.formats import render
from asrforge.transcript import Segment, Transcript, Word

TRANSCRIPT = Transcript(
    text="And so, my fellow Americans, ask not what your country can do for you.",
    language="en",
    duration_s=3725.5,
    segments=[
        Segment(0, 0.0, 2.5, " And so, my fellow Americans,", words=(Word(0.0, 0.4, "And"), Word(0.4, 0.9, "so,"))),
        Segment(1, 3661.25, 3665.0, " ask not what your country can do for you."),
    ],
)


def test_srt_parses_and_keeps_times_past_one_hour():
    cues = list(srt.parse(render(TRANSCRIPT, "srt")))
    assert [cue.index for cue in cues] == [1, 2]
    assert cues[1].start.total_seconds() == pytest.approx(3661.25)
    assert cues[1].content == "ask not what your country can do for you."


def test_vtt_parses_with_webvtt():
    captions = webvtt.from_buffer(io.StringIO(render(TRANSCRIPT, "vtt")))
    assert [caption.start for caption in captions] == ["00:00:00.000", "01:01:01.250"]
    assert captions[0].text == "And so, my fellow Americans,"


def test_json_and_text_carry_the_text_only():
    assert json.loads(render(TRANSCRIPT, "json")) == {"text": TRANSCRIPT.text}
    assert render(TRANSCRIPT, "text") == TRANSCRIPT.text + "\n"


def test_verbose_json_has_segments_words_language_and_duration():
    body = json.loads(render(TRANSCRIPT, "verbose_json"))
    assert body["language"] == "en" and body["duration"] == 3725.5 and body["task"] == "transcribe"
    assert [segment["start"] for segment in body["segments"]] == [0.0, 3661.25]
    assert body["words"][1] == {"word": "so,", "start": 0.4, "end": 0.9}


def test_a_transcript_without_segments_becomes_one_cue():
    plain = Transcript(text="hello world", language="en", duration_s=1.5)
    cues = list(srt.parse(render(plain, "srt")))
    assert len(cues) == 1 and cues[0].end.total_seconds() == pytest.approx(1.5)


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError, match="unknown response_format"):
        render(TRANSCRIPT, "docx")
