"""/v1/audio/translations with target_language, driven by the ``openai`` client: Chinese through transcription and a
real chat-completions server process (tests/translation/chat_server.py), every response format, source timing kept,
and clear errors for an unsupported target or an unreachable translator."""

from __future__ import annotations

import json
import socket
import time

import openai
import pytest
import srt
import webvtt

from asrforge.cli import main as cli

CHAT = "asrforge.translation.chat_completions.ChatCompletionsConfig"


@pytest.fixture(scope="module")
def zh_server(make_server, chat_server):
    translation = {"_target_": CHAT, "base_url": chat_server.url, "model": "endpoint", "timeout_s": 5}
    with make_server(translation=translation) as live:
        yield live


def client(live) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)


def test_chinese_target_translates_each_segment_and_keeps_its_timing(zh_server, jfk_bytes, chat_server):
    api = client(zh_server)
    source = api.audio.transcriptions.create(
        file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="verbose_json"
    )
    expected = [(round(s.start, 3), round(s.end, 3), "译文：" + s.text.strip()) for s in source.segments]
    assert len(expected) >= 2

    def translate(response_format: str):
        return api.audio.translations.create(
            file=("jfk.wav", jfk_bytes), model="whisper-1", response_format=response_format,
            extra_body={"target_language": "zh"},
        )  # fmt: skip

    cues = list(srt.parse(translate("srt")))
    assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == expected
    vtt = webvtt.from_string(translate("vtt"))
    assert [(c.start, c.end, c.text) for c in vtt] == [
        (
            srt.timedelta_to_srt_timestamp(c.start).replace(",", "."),
            srt.timedelta_to_srt_timestamp(c.end).replace(",", "."),
            c.content,
        )
        for c in cues
    ]
    verbose = translate("verbose_json")
    assert verbose.language == "zh" and verbose.task == "translate"
    assert [(s.start, s.end, s.text) for s in verbose.segments] == expected
    text = "".join(text for _, _, text in expected)
    assert verbose.text == text and translate("json").text == text
    assert translate("text") == text + "\n"
    # The translator saw the transcript's segments, in order, with English named as their language.
    sent = chat_server.requests("endpoint")
    assert sent[0]["segments"] == [s.text.strip() for s in source.segments][: len(sent[0]["segments"])]
    assert sent[0]["source_language"] == "English"


def test_an_unsupported_target_is_a_400_listing_the_supported_ones(zh_server, jfk_bytes):
    with pytest.raises(openai.BadRequestError) as raised:
        client(zh_server).audio.translations.create(
            file=("jfk.wav", jfk_bytes), model="whisper-1", extra_body={"target_language": "fr"}
        )
    error = raised.value.body
    assert error["param"] == "target_language" and "en, zh" in error["message"]


def test_chinese_without_a_configured_translator_is_a_400_that_says_why(server, jfk_bytes):
    with pytest.raises(openai.BadRequestError) as raised:
        client(server).audio.translations.create(
            file=("jfk.wav", jfk_bytes), model="whisper-1", extra_body={"target_language": "zh"}
        )
    assert raised.value.body["param"] == "target_language"
    assert "no text translator is configured" in raised.value.body["message"]


def test_english_speech_on_an_english_only_model_translates_to_its_transcript(server, jfk_bytes, jfk_transcript):
    # As OpenAI's endpoint does: English speech "translated" into English is the English transcript.
    api = client(server)
    assert api.audio.translations.create(file=("jfk.wav", jfk_bytes), model="whisper-1").text == jfk_transcript.text
    verbose = api.audio.translations.create(
        file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="verbose_json", extra_body={"language": "en"}
    )
    assert verbose.text == jfk_transcript.text and verbose.task == "translate" and verbose.language == "en"
    # Speech named as another language cannot be translated by tiny.en: the 400 names a model that can.
    with pytest.raises(openai.BadRequestError) as raised:
        api.audio.translations.create(file=("jfk.wav", jfk_bytes), model="whisper-1", extra_body={"language": "fr"})
    assert raised.value.body["param"] == "language" and "whisper-base" in raised.value.body["message"]


def test_an_unreachable_translator_is_a_503_not_a_hang(make_server, jfk_bytes):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with make_server(translation={"_target_": CHAT, "base_url": url, "timeout_s": 2}) as live:
        started = time.monotonic()
        with pytest.raises(openai.InternalServerError) as raised:
            client(live).audio.translations.create(
                file=("jfk.wav", jfk_bytes), model="whisper-1", extra_body={"target_language": "zh"}
            )
        elapsed = time.monotonic() - started
    assert raised.value.status_code == 503 and url in raised.value.body["message"]
    assert raised.value.body["code"] == "translator_unavailable"
    assert elapsed < 30  # the transcription plus a refused connection; a hang would run to the client's timeout


def test_the_spec_documents_target_language_and_the_translator_errors(zh_server):
    import httpx

    spec = httpx.get(zh_server.url + "/openapi.json").json()
    operation = spec["paths"]["/v1/audio/translations"]["post"]
    ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    field = spec["components"]["schemas"][ref]["properties"]["target_language"]
    assert field["enum"] == ["en", "zh"] and field["default"] == "en" and field["examples"] == ["zh"]
    assert {"400", "502", "503"} <= set(operation["responses"])
    assert "example" in operation["responses"]["503"]["content"]["application/json"]


def test_cli_translates_into_chinese(chat_server, jfk_path, capsys):
    code = cli(
        ["transcribe", str(jfk_path), "--engine", "whisper-tiny-en", "--plugins", "eval_mode,sdpa", "--task",
         "translate", "--target-language", "zh", "--translator-url", chat_server.url, "--format", "json"]
    )  # fmt: skip
    assert code == 0
    body = json.loads(capsys.readouterr().out)
    assert body["language"] == "zh" and body["text"].startswith("译文：") and "ask what you can do" in body["text"]
