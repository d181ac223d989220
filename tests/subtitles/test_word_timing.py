"""Word times without a model (fast mode) and the tidying of aligner times: monotonic, inside their segments,
out of the silences the VAD found."""

from __future__ import annotations

import pytest

from asrforge.subtitles.refine import refine_words
from asrforge.subtitles.timing_fast import heuristic_words, unpadded_speech
from asrforge.transcript import Segment, Transcript, Word

TRANSCRIPT = Transcript(
    text="And so my fellow Americans, ask not what your country can do for you.",
    language="en",
    duration_s=11.0,
    segments=[
        Segment(0, 0.0, 7.7, "And so my fellow Americans, ask not what your country can do for you,"),
        Segment(1, 7.7, 10.7, "ask what you can do for your country."),
    ],
)
SPEECH = [(0.35, 2.24), (3.3, 4.4), (5.4, 7.65), (8.2, 10.7)]  # seconds, as Silero finds them in the JFK clip


def all_words(transcript: Transcript) -> list[Word]:
    return [w for s in transcript.segments for w in s.words]


def test_heuristic_words_are_monotonic_inside_their_segments_and_keep_the_text():
    timed = heuristic_words(TRANSCRIPT, SPEECH)
    for segment in timed.segments:
        assert "".join(w.word for w in segment.words).split() == segment.text.split()
        assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)
    words = all_words(timed)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:], strict=False))


def test_heuristic_words_sit_in_speech_and_longer_words_take_longer():
    timed = heuristic_words(TRANSCRIPT, SPEECH)
    for word in all_words(timed):
        assert any(start - 1e-6 <= word.start and word.end <= end + 1e-6 for start, end in SPEECH), word
    first = timed.segments[0].words
    assert first[0].start == pytest.approx(SPEECH[0][0])  # the leading silence gets no word
    by_text = {w.word.strip(): w for w in first}
    assert by_text["Americans,"].end - by_text["Americans,"].start > 2 * (by_text["so"].end - by_text["so"].start)


def test_without_speech_spans_words_fill_the_segment():
    timed = heuristic_words(TRANSCRIPT)
    segment = timed.segments[1]
    assert segment.words[0].start == segment.start and segment.words[-1].end == pytest.approx(segment.end)


def test_a_transcript_without_segments_gets_one_and_unspaced_text_is_split_by_character():
    timed = heuristic_words(Transcript(text="我们去公园。", language="zh", duration_s=2.0))
    assert [w.word for w in all_words(timed)] == ["我", "们", "去", "公", "园。"]


def test_silero_padding_is_taken_off_the_spans():
    assert unpadded_speech([(16_000, 48_000), (50_000, 52_000)], pad_ms=200) == [
        (1.2, 2.8),
        (pytest.approx(3.1875), pytest.approx(3.1875)),
    ]


def test_refine_moves_a_first_word_out_of_leading_silence_and_over_a_pause():
    words = (Word(0.0, 0.78, " And"), Word(0.78, 1.06, " so"), Word(2.22, 3.88, " ask"), Word(3.88, 4.2, " not"))
    transcript = Transcript("And so ask not", "en", 5.0, [Segment(0, 0.0, 4.4, "And so ask not", words)])
    refined = all_words(refine_words(transcript, SPEECH))
    assert refined[0].start == pytest.approx(0.35)  # started in silence: moved to the speech onset
    assert refined[2].start == pytest.approx(3.3)  # stretched over the pause: starts after it
    # The last word before a pause ends where its speech span does (4.4); "so" is 1.2 s short of its span's end,
    # beyond the 0.6 s a word is moved to an edge, and keeps its end.
    assert [w.end for w in refined] == [0.78, 1.06, 3.88, 4.4]


def test_refine_keeps_a_word_run_on_over_a_pause_on_the_side_it_was_spoken():
    # Seen on eval/long: DTW timed "century," 94.03-94.85 s over a pause at 94.40-94.82 s, so the sentence's last
    # word moved into the next sentence's cue, 2.7 s late.
    speech = [(85.98, 94.4), (94.82, 97.7)]
    words = (Word(93.37, 94.03, " 15th"), Word(94.03, 94.85, " century,"), Word(94.85, 95.01, " but"))
    words += (Word(95.01, 95.33, " by"), Word(95.33, 95.63, " printers"))
    text = "15th century, but by printers"
    refined = all_words(refine_words(Transcript(text, "en", 98.0, [Segment(0, 90.0, 97.0, text, words)]), speech))
    assert (refined[1].start, refined[1].end) == (94.03, 94.4)
    assert refined[2].start == pytest.approx(94.82)  # the first word after the pause starts with its speech


def test_refine_moves_only_the_words_at_a_speech_spans_edges_and_only_a_little():
    # Seen on eval/long: DTW starts a short first word late and ends a sentence's last word early, inside speech.
    speech = [(10.0, 14.0), (15.0, 18.0)]
    words = (Word(10.3, 10.5, " and"), Word(10.5, 11.0, " so"), Word(11.0, 13.7, " on,"))
    words += (Word(15.9, 16.4, " then"), Word(16.4, 17.0, " more"))
    text = "and so on, then more"
    refined = all_words(refine_words(Transcript(text, "en", 19.0, [Segment(0, 10.0, 17.0, text, words)]), speech))
    assert [(w.start, w.end) for w in refined] == [
        (10.0, 10.5),  # first word of its span, 0.3 s after the onset: starts with the speech
        (10.5, 11.0),  # inside the span: untouched
        (11.0, 14.0),  # last word of its span, 0.3 s before the offset: ends with the speech
        (15.9, 16.4),  # first of its span but 0.9 s after the onset: too far to be the aligner's error
        (16.4, 17.0),  # last word, 1 s before the offset: kept
    ]
