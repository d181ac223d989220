"""Who spoke when through the official ``openai`` client against a real uvicorn serving real tiny.en: diarized_json,
known speakers named by reference samples, SSE segment events, speaker cues in SRT/WebVTT, and bad input."""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import openai
import pytest
import srt
import webvtt

from asrforge.audio import load_audio

DIARIZE = "gpt-4o-transcribe-diarize"


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def recording(two_speakers, to_wav) -> tuple[bytes, list[tuple[float, float, str]]]:
    samples, parts = two_speakers
    return to_wav(samples), parts


def _data_url(wav: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav).decode()


def _speaker_of_each_part(segments, parts) -> list[set[str]]:
    """The speakers of the segments lying inside each reference part (0.25 s slack at its edges)."""
    return [{s.speaker for s in segments if s.start >= start - 0.25 and s.end <= end + 0.25} for start, end, _ in parts]


def test_diarized_json_attributes_each_part_to_its_speaker(client, recording):
    audio, parts = recording
    result = client.audio.transcriptions.create(
        file=("two.wav", audio), model=DIARIZE, response_format="diarized_json", chunking_strategy="auto"
    )
    assert result.task == "transcribe" and result.duration == pytest.approx(parts[-1][1] + 0.8, abs=0.01)
    assert {s.type for s in result.segments} == {"transcript.text.segment"}
    assert len({s.id for s in result.segments}) == len(result.segments)
    # No segment crosses from one part into the next: each lies inside one part.
    assert sum(
        len([s for s in result.segments if s.start >= a - 0.25 and s.end <= b + 0.25]) for a, b, _ in parts
    ) == len(result.segments)
    assert _speaker_of_each_part(result.segments, parts) == [{"A"}, {"B"}, {"A"}]
    assert " ".join(s.text for s in result.segments).split() == result.text.split()
    assert result.usage.seconds == pytest.approx(result.duration)


def test_known_speaker_names_label_the_speakers(client, recording, dev_dir, to_wav):
    audio, parts = recording
    names = ["reader-2412", "reader-1988"]  # named in the opposite order of appearance
    references = [
        _data_url(to_wav(load_audio(dev_dir / "librispeech_2412-153948-0001.wav")[: 16_000 * 8])),
        _data_url(to_wav(load_audio(dev_dir / "librispeech_1988-24833-0000.wav"))),
    ]
    result = client.audio.transcriptions.create(
        file=("two.wav", audio),
        model=DIARIZE,
        response_format="diarized_json",
        chunking_strategy="auto",
        known_speaker_names=names,
        known_speaker_references=references,
    )
    assert _speaker_of_each_part(result.segments, parts) == [{"reader-1988"}, {"reader-2412"}, {"reader-1988"}]


def test_stream_emits_the_segments_then_done(client, recording):
    audio, parts = recording
    events = list(
        client.audio.transcriptions.create(
            file=("two.wav", audio), model=DIARIZE, response_format="diarized_json", stream=True
        )
    )
    assert [e.type for e in events] == ["transcript.text.segment"] * (len(events) - 1) + ["transcript.text.done"]
    segments = events[:-1]
    assert _speaker_of_each_part(segments, parts) == [{"A"}, {"B"}, {"A"}]
    assert " ".join(s.text for s in segments).split() == events[-1].text.split()


def test_srt_and_vtt_carry_the_speaker(client, recording):
    audio, _ = recording
    srt_body = client.audio.transcriptions.create(file=("two.wav", audio), model=DIARIZE, response_format="srt")
    prefixes = [c.content.split(":")[0] for c in srt.parse(srt_body)]
    assert set(prefixes) == {"A", "B"} and prefixes[0] == "A"
    vtt_body = client.audio.transcriptions.create(file=("two.wav", audio), model=DIARIZE, response_format="vtt")
    voices = [c.voice for c in webvtt.from_buffer(io.StringIO(vtt_body))]
    assert set(voices) == {"A", "B"} and voices[0] == "A"


def _post(server, data: dict, audio: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        data={"model": DIARIZE, "response_format": "diarized_json", **data},
        files={"file": ("a.wav", audio)},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"known_speaker_names[]": ["ann"], "known_speaker_references[]": ["data:text/plain;base64,aGVsbG8="]},
         "known_speaker_references"),
        ({"known_speaker_names[]": ["ann"], "known_speaker_references[]": ["data:audio/wav;base64,aGVsbG8="]},
         "known_speaker_references"),
        ({"known_speaker_names[]": ["ann"], "known_speaker_references[]": ["https://example.com/ann.wav"]},
         "known_speaker_references"),
        ({"known_speaker_names[]": ["ann", "bob"], "known_speaker_references[]": ["data:audio/wav;base64,AA=="]},
         "known_speaker_names"),
        ({"known_speaker_names[]": ["ann"], "response_format": "json"}, "known_speaker_names"),
    ],
)  # fmt: skip
def test_bad_known_speakers_are_refused_with_a_400(server, jfk_bytes, data, param):
    response = _post(server, data, jfk_bytes)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_a_too_short_reference_is_refused(server, jfk_bytes, to_wav):
    short = _data_url(to_wav(np.zeros(8000, dtype=np.float32)))
    response = _post(server, {"known_speaker_names[]": ["ann"], "known_speaker_references[]": [short]}, jfk_bytes)
    assert response.status_code == 400 and "2-10 s" in response.json()["error"]["message"]


def test_an_empty_recording_is_a_400_and_the_server_keeps_serving(server, client, jfk_bytes, to_wav):
    for empty in (b"", to_wav(np.zeros(0, dtype=np.float32))):
        response = _post(server, {}, empty)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "file"
    assert "country" in client.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1").text


def test_the_diarize_model_and_fields_are_documented(server, client):
    assert DIARIZE in {m.id for m in client.models.list()}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "DiarizedTranscription" in spec["components"]["schemas"]
    assert "TextSegmentEvent" in spec["components"]["schemas"]
    form = json.dumps(spec["components"]["schemas"])
    assert "known_speaker_names[]" in form and "known_speaker_references[]" in form and "diarized_json" in form
