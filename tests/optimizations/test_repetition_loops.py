"""Loop detection must catch decoder loops and leave real speech alone."""

from __future__ import annotations

from asrforge.optimizations.repetition_loops import cut_loops, has_loop


def test_a_looping_phrase_is_cut_to_one_copy_and_the_prefix_kept():
    text = "And so, my fellow Americans, thank you. " + "Thank you. " * 12
    assert has_loop(text)
    assert cut_loops([text]) == ["And so, my fellow Americans, thank you."]


def test_text_after_a_loop_is_kept():
    text = "we will " + "go on and on " * 6 + "until the end."
    assert cut_loops([text]) == ["we will go on and on until the end."]


def test_real_speech_repetition_is_not_a_loop():
    for text in [
        "No, no, no, I said no.",
        "It was very very good.",
        "Ask not what your country can do for you, ask what you can do for your country.",
        "Ha ha ha ha, that's funny.",
    ]:
        assert not has_loop(text), text


def test_chinese_loops_count_characters():
    text = "我们今天讨论" + "好的" * 10 + "再见"
    assert has_loop(text)
    assert cut_loops([text]) == ["我们今天讨论好的再见"]


def test_loops_spanning_segments_empty_the_repeated_segments():
    segments = ["Hello there."] + ["I don't know."] * 5 + ["Bye."]
    assert cut_loops(segments) == ["Hello there.", "I don't know.", "", "", "", "", "Bye."]


def test_a_partial_copy_cut_off_by_the_token_limit_goes_too():
    text = "the kittens came home. " * 8 + "the kittens"
    assert cut_loops([text]) == ["the kittens came home."]


def test_new_text_that_starts_like_the_loop_is_kept():
    text = "thank you " * 8 + "thank goodness it ended"
    assert cut_loops([text]) == ["thank you thank goodness it ended"]
