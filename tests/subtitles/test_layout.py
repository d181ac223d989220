"""Cue layout rules, and SRT/WebVTT output that the real parsers (``srt``, ``webvtt-py``) accept."""

from __future__ import annotations

import io
import random

import pytest
import srt
import webvtt

from asrforge.subtitles.layout import layout_cues
from asrforge.subtitles.options import LayoutOptions
from asrforge.subtitles.render import cues_to_srt, cues_to_vtt
from asrforge.transcript import Word

LAYOUT = LayoutOptions()


def words_at(
    text: str, start: float = 0.0, per_word: float = 0.3, pauses: dict[int, float] | None = None
) -> list[Word]:
    """Words of ``text`` back to back, ``per_word`` seconds each, with a pause of ``pauses[i]`` s before word i."""
    words, clock = [], start
    for index, token in enumerate(text.split()):
        clock += (pauses or {}).get(index, 0.0)
        words.append(Word(clock, clock + per_word, (" " if index else "") + token))
        clock += per_word
    return words


def random_words(rng: random.Random, count: int) -> list[Word]:
    vocabulary = ["a", "I", "the", "cat", "country", "extraordinarily", "can,", "do.", "you?", "for", "ask", "what"]
    words, clock = [], rng.uniform(0, 2)
    for _ in range(count):
        clock += rng.choice([0.0, 0.0, 0.0, 0.05, 0.2, 0.6, 2.5])
        length = rng.uniform(0.0, 0.8)
        words.append(Word(round(clock, 3), round(clock + length, 3), " " + rng.choice(vocabulary)))
        clock += length
    return words


def seconds(timestamp: str) -> float:
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def check_rules(cues, words: list[Word], layout: LayoutOptions = LAYOUT) -> None:
    assert " ".join(" ".join(c.lines) for c in cues).split() == [w.word.strip() for w in words]
    for cue in cues:
        assert 1 <= len(cue.lines) <= layout.max_lines
        assert all(len(line) <= layout.max_chars_per_line or " " not in line for line in cue.lines)
        assert cue.end > cue.start
        assert cue.end - cue.start <= layout.max_duration_s + 1e-9
    for before, after in zip(cues, cues[1:], strict=False):
        assert before.end <= after.start  # never an overlap


def test_long_text_is_cut_into_two_line_cues_of_at_most_42_characters():
    text = (
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your "
        "country. My fellow citizens of the world, ask not what America will do for you, but what together we "
        "can do for the freedom of man."
    )
    words = words_at(text)
    cues = layout_cues(words)
    check_rules(cues, words)
    assert len(cues) >= 4
    assert any(len(c.lines) == 2 for c in cues)
    assert cues[0].lines[-1].endswith(",") or "Americans," in cues[0].lines[0]  # a clause mark ends a line
    assert any(c.text.endswith("country.") for c in cues)  # a sentence never runs on into the next cue


def test_a_pause_starts_a_new_cue_and_the_cue_starts_with_the_speech():
    words = words_at("the first part here then the second part", pauses={4: 0.5})
    cues = layout_cues(words)
    assert [c.text for c in cues] == ["the first part here", "then the second part"]
    assert cues[1].start == pytest.approx(words[4].start, abs=0.001)
    assert cues[0].end == pytest.approx(words[3].end, abs=0.001)


def test_short_cues_last_the_minimum_duration_when_there_is_room_but_never_overlap():
    words = [Word(1.0, 1.2, "Yes."), Word(1.5, 1.7, " No."), Word(5.0, 5.2, " Maybe.")]
    cues = layout_cues(words)
    assert [c.text for c in cues] == ["Yes.", "No.", "Maybe."]
    assert cues[0].end == pytest.approx(1.5 - LAYOUT.min_gap_s, abs=0.001)  # lengthened, up to a gap before the next
    assert cues[1].end - cues[1].start == pytest.approx(LAYOUT.min_duration_s, abs=0.001)
    assert cues[2].end - cues[2].start == pytest.approx(LAYOUT.min_duration_s, abs=0.001)


def test_slow_speech_is_cut_at_the_maximum_duration():
    words = words_at("one two three four five six seven eight nine ten", per_word=1.5)
    cues = layout_cues(words)
    check_rules(cues, words)
    assert len(cues) >= 3


def test_unspaced_languages_join_characters_without_spaces():
    words = [Word(i * 0.2, i * 0.2 + 0.2, char) for i, char in enumerate("我们今天去公园散步吧。")]
    cues = layout_cues(words, spaced=False)
    assert [c.text for c in cues] == ["我们今天去公园散步吧。"]


@pytest.mark.parametrize("seed", range(20))
def test_random_word_streams_keep_every_rule_and_parse_as_srt_and_webvtt(seed):
    rng = random.Random(seed)
    words = random_words(rng, rng.randint(1, 120))
    layout = LayoutOptions(max_chars_per_line=rng.choice([16, 32, 42]), max_lines=rng.choice([1, 2, 3]))
    cues = layout_cues(words, layout)
    check_rules(cues, words, layout)
    parsed = list(srt.parse(cues_to_srt(cues)))
    assert [p.content for p in parsed] == [c.text for c in cues]
    assert [p.start.total_seconds() for p in parsed] == pytest.approx([c.start for c in cues], abs=0.0011)
    captions = webvtt.from_buffer(io.StringIO(cues_to_vtt(cues)))
    assert [c.text for c in captions] == [c.text for c in cues]
    assert [seconds(c.end) for c in captions] == pytest.approx([c.end for c in cues], abs=0.0011)


def test_an_arrow_in_the_text_cannot_break_a_webvtt_cue():
    cues = layout_cues(words_at("left --> right"))
    captions = webvtt.from_buffer(io.StringIO(cues_to_vtt(cues)))
    assert len(captions) == 1 and "-->" not in captions[0].text


def test_no_words_give_an_empty_but_valid_file():
    assert list(srt.parse(cues_to_srt([]))) == []
    assert len(webvtt.from_buffer(io.StringIO(cues_to_vtt([])))) == 0
