"""The chat-completions back-end against a real server process on loopback (tests/translation/chat_server.py):
batches with neighbours as context, timing kept per segment, and clear failures when the back-end is away."""

from __future__ import annotations

import socket
import time

import pytest

from asrforge.errors import ConfigError, UnsupportedOptionError
from asrforge.transcript import Segment, Transcript, Word
from asrforge.translation import (
    TranslatorReplyError,
    TranslatorUnavailableError,
    check_target,
    make_translator_config,
    translate_transcript,
)

SENTENCES = [f"Sentence number {i} of the talk." for i in range(7)]


def seven_segments() -> Transcript:
    segments = [
        Segment(i, 1.5 * i, 1.5 * i + 1.2, " " + text, words=(Word(1.5 * i, 1.5 * i + 0.4, " Sentence"),))
        for i, text in enumerate(SENTENCES)
    ]
    return Transcript(text=" ".join(SENTENCES), language="en", duration_s=11.0, segments=segments)


def translator(url: str, model: str = "echo", **fields):
    node = {"_target_": "asrforge.translation.chat_completions.ChatCompletionsConfig", "base_url": url, "model": model}
    config = make_translator_config({**node, **fields})
    return config, config.build()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_segments_are_translated_in_batches_with_their_neighbours_and_keep_their_times(chat_server):
    config, chat = translator(chat_server.url, model="batches", batch_size=3, context_segments=1)
    source = seven_segments()
    result = translate_transcript(source, chat, "zh", config.batch_size, config.context_segments)

    assert [s.text for s in result.segments] == ["译文：" + text for text in SENTENCES]
    assert [(s.start, s.end) for s in result.segments] == [(s.start, s.end) for s in source.segments]
    assert all(not s.words for s in result.segments)  # a translation's words were never spoken: no word times
    assert result.language == "zh" and result.text == "".join("译文：" + text for text in SENTENCES)
    sent = chat_server.requests("batches")
    assert [r["segments"] for r in sent] == [SENTENCES[0:3], SENTENCES[3:6], SENTENCES[6:7]]
    assert [r["context_before"] for r in sent] == [[], [SENTENCES[2]], [SENTENCES[5]]]
    assert [r["context_after"] for r in sent] == [[SENTENCES[3]], [SENTENCES[6]], []]
    assert {r["source_language"] for r in sent} == {"English"}


def test_english_target_is_spaced_and_a_transcript_without_segments_is_one_piece(chat_server):
    _, chat = translator(chat_server.url)
    result = translate_transcript(Transcript("你好。世界。", "zh", 2.5), chat, "en")
    assert result.text == "EN: 你好。世界。"
    assert [(s.start, s.end, s.text) for s in result.segments] == [(0.0, 2.5, "EN: 你好。世界。")]


def test_a_model_that_loses_count_gets_each_segment_of_the_batch_alone(chat_server):
    _, chat = translator(chat_server.url, model="miscount", batch_size=4, context_segments=1)
    result = translate_transcript(seven_segments(), chat, "zh", batch_size=4, context_segments=1)
    assert [s.text for s in result.segments] == ["译文：" + text for text in SENTENCES]
    singles = [r for r in chat_server.requests("miscount") if len(r["segments"]) == 1]
    assert [r["segments"][0] for r in singles] == SENTENCES  # 4 + 3 fell back to one at a time (the 7th was alone)
    assert singles[1]["context_before"] == [SENTENCES[0]] and singles[1]["context_after"] == [SENTENCES[2]]


def test_an_unreachable_back_end_fails_at_once_with_its_address():
    _, chat = translator(url := closed_port_url())
    started = time.monotonic()
    with pytest.raises(TranslatorUnavailableError, match="cannot be reached") as raised:
        translate_transcript(seven_segments(), chat, "zh")
    assert url in str(raised.value) and time.monotonic() - started < 5


def test_a_silent_back_end_fails_within_its_timeout(chat_server):
    _, chat = translator(chat_server.url, model="slow", timeout_s=1)
    started = time.monotonic()
    with pytest.raises(TranslatorUnavailableError, match="did not answer within 1 s"):
        translate_transcript(seven_segments(), chat, "zh")
    assert time.monotonic() - started < 5  # one timeout, not one per segment or retry


def test_a_back_end_error_is_reported_with_its_status(chat_server):
    _, chat = translator(chat_server.url, model="broken")
    with pytest.raises(TranslatorReplyError, match="answered 500"):
        translate_transcript(seven_segments(), chat, "en")


def test_config_and_target_checks_say_what_is_allowed():
    with pytest.raises(UnsupportedOptionError, match="translates into en, zh") as raised:
        check_target("fr", {"en", "zh"})
    assert raised.value.param == "target_language"
    assert check_target(" ZH ", {"en", "zh"}) == "zh"
    with pytest.raises(ConfigError, match="no prompt for target language"):
        make_translator_config("chat-completions").__class__(targets=("en", "xx"))
    with pytest.raises(ConfigError, match="no translation config named"):
        make_translator_config("nonexistent")
    assert make_translator_config(None) is None
