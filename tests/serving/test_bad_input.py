"""Every bad input gets OpenAI's error JSON with the right 4xx, and the server keeps serving."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def post(url: str, files: dict | None = None, data: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(url, files=files, data={"model": "whisper-1", **(data or {})}, timeout=120, **kwargs)


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param, error
    return error


def test_no_file(server):
    assert_openai_error(post(server.url + TRANSCRIPTIONS), 400, "file")


def test_no_model(server, jfk_bytes):
    response = httpx.post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, timeout=60)
    assert_openai_error(response, 400, "model")


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("empty.wav", b"", "empty"),
        ("noise.wav", np.random.default_rng(0).bytes(20_000), "random bytes"),
        ("notes.txt", b"this is a text file, not audio\n" * 50, "text"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(400), "an image"),
    ],
)
def test_undecodable_files(server, name, content, what):
    error = assert_openai_error(post(server.url + TRANSCRIPTIONS, files={"file": (name, content)}), 400, "file")
    assert error["code"] == "invalid_audio", what


def test_truncated_wav(server, jfk_bytes):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("cut.wav", jfk_bytes[: len(jfk_bytes) // 3])})
    assert "truncated" in assert_openai_error(response, 400, "file")["message"]


def test_unknown_response_format(server, jfk_bytes):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"response_format": "xml"})
    assert_openai_error(response, 400, "response_format")


@pytest.mark.parametrize(("language", "why"), [("english", "not a code"), ("de", "tiny.en knows only English")])
def test_bad_language(server, jfk_bytes, language, why):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"language": language})
    assert_openai_error(response, 400, "language")


def test_unknown_parameter(server, jfk_bytes):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"beam_sizes": "5"})
    assert "beam_sizes" in assert_openai_error(response, 400, "beam_sizes")["message"]


def test_out_of_range_temperature(server, jfk_bytes):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"temperature": "1.5"})
    assert_openai_error(response, 400, "temperature")


def test_word_timestamps_need_verbose_json(server, jfk_bytes):
    data = {"timestamp_granularities[]": "word", "response_format": "json"}
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data=data)
    assert_openai_error(response, 400, "timestamp_granularities")


def test_unknown_model(server, jfk_bytes):
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("a.wav", jfk_bytes)}, data={"model": "whisper-9"})
    assert assert_openai_error(response, 404, "model")["code"] == "model_not_found"


def test_translation_of_other_languages_on_an_english_only_model(server, jfk_bytes):
    files = {"file": ("a.wav", jfk_bytes)}
    response = post(server.url + "/v1/audio/translations", files=files, data={"model": "whisper-1", "language": "de"})
    assert "whisper-base" in assert_openai_error(response, 400, "language")["message"]


def test_oversized_upload_and_too_long_audio(make_server, jfk_bytes):
    with make_server(limits={"max_upload_mb": 0.2, "max_duration_s": 5}) as live:
        big = bytes(300 * 1024)
        response = post(live.url + TRANSCRIPTIONS, files={"file": ("big.wav", big)})
        assert assert_openai_error(response, 413, "file")["code"] == "file_too_large"
        # A chunked upload (no Content-Length) is counted as it arrives.
        response = httpx.post(
            live.url + TRANSCRIPTIONS,
            content=iter(
                [b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'] + [b"x" * 65536] * 5
            ),
            headers={"content-type": "multipart/form-data; boundary=abc"},
            timeout=60,
        )
        assert_openai_error(response, 413, "file")
        long_wav = _wav(seconds=6)
        assert len(long_wav) < 0.2 * 1024 * 1024
        response = post(live.url + TRANSCRIPTIONS, files={"file": ("long.wav", long_wav)})
        assert assert_openai_error(response, 400, "file")["code"] == "audio_too_long"


def test_the_server_still_answers_correctly_after_bad_input(server, jfk_bytes, jfk_transcript):
    for content in (b"", b"garbage" * 100, jfk_bytes[:1000]):
        post(server.url + TRANSCRIPTIONS, files={"file": ("x.wav", content)})
    response = post(server.url + TRANSCRIPTIONS, files={"file": ("jfk.wav", jfk_bytes)})
    assert response.status_code == 200 and response.json()["text"] == jfk_transcript.text


def _wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(1)
        f.setframerate(rate)
        f.writeframes(bytes(int(seconds * rate)))
    return out.getvalue()
