"""The decoding policy over HTTP: a request without options gets the server's policy (faster-whisper's default unless
configured), OpenAI's ``temperature`` and the extra ``beam_size`` form field reach the engine, bad values get 400."""

from __future__ import annotations

import httpx
import openai
import pytest

from asrforge.config import decode_policy
from asrforge.engines.base import DecodeOptions
from asrforge.serving.settings import ServerSettings

TRANSCRIPTIONS = "/v1/audio/transcriptions"
FALLBACK = DecodeOptions.from_mapping(decode_policy("fallback"))


@pytest.fixture
def decoded_options(tiny_engine, monkeypatch) -> list[DecodeOptions]:
    """The options every decode of the shared engine ran with (the real decode still runs)."""
    seen: list[DecodeOptions] = []
    original = tiny_engine.decode

    def spy(batch, options):
        seen.append(options)
        return original(batch, options)

    monkeypatch.setattr(tiny_engine, "decode", spy)
    return seen


def test_the_served_default_is_faster_whispers_policy():
    assert ServerSettings.from_config(None).decode == "fallback"


def test_form_fields_reach_the_engine(make_server, decoded_options, dev_dir):
    audio = (dev_dir / "librispeech_1988-24833-0000.wav").read_bytes()
    with make_server(decode="fallback") as live:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0)
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio))
        assert decoded_options[-1].policy == FALLBACK.policy  # no options: the server's policy
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio), temperature=0.0)
        assert decoded_options[-1].policy == FALLBACK.policy  # OpenAI's 0 = "raise it while thresholds fail"
        client.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", audio), temperature=0.4, extra_body={"beam_size": 2}
        )
        assert decoded_options[-1].temperatures == (0.4,) and decoded_options[-1].beam_size == 2
        client.audio.transcriptions.create(model="whisper-1", file=("a.wav", audio), extra_body={"beam_size": 1})
        assert decoded_options[-1].beam_size == 1 and decoded_options[-1].temperatures == FALLBACK.temperatures
        calls = len(decoded_options)
        bad = httpx.post(
            live.url + TRANSCRIPTIONS, files={"file": ("a.wav", audio)}, data={"model": "whisper-1", "beam_size": "0"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "beam_size"
        assert len(decoded_options) == calls  # refused before any decoding
