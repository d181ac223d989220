"""The official ``openai`` client, unchanged, against a real uvicorn serving real tiny.en."""

from __future__ import annotations

import io
import json
import time

import httpx
import openai
import pytest
import srt
import webvtt


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_json_transcript_is_the_engines_own(client, jfk_path, jfk_transcript):
    with jfk_path.open("rb") as audio:
        result = client.audio.transcriptions.create(file=audio, model="whisper-1")
    assert result.text == jfk_transcript.text
    assert "ask what you can do for your country" in result.text


def test_text_response_is_the_plain_transcript(client, jfk_bytes, jfk_transcript):
    text = client.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="text")
    assert text.strip() == jfk_transcript.text


def test_srt_and_vtt_parse_with_real_parsers_and_keep_the_words(client, jfk_bytes, jfk_transcript):
    """Cues are laid out from timed words (asrforge/subtitles; its own tests check the timing and layout)."""
    srt_body = client.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="srt")
    cues = list(srt.parse(srt_body))
    assert " ".join(c.content for c in cues).split() == jfk_transcript.text.split()
    assert jfk_transcript.segments[0].start <= cues[0].start.total_seconds()
    vtt_body = client.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="vtt")
    captions = webvtt.from_buffer(io.StringIO(vtt_body))
    assert [c.text for c in captions] == [c.content for c in cues]
    hours, minutes, seconds = captions[-1].end.split(":")
    end = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert end == pytest.approx(cues[-1].end.total_seconds(), abs=0.001) and end <= jfk_transcript.duration_s


def test_verbose_json_has_segments_language_and_duration(client, jfk_bytes, jfk_transcript):
    result = client.audio.transcriptions.create(
        file=("jfk.wav", jfk_bytes), model="whisper-1", response_format="verbose_json",
        timestamp_granularities=["segment"],
    )  # fmt: skip
    assert result.language == "en"
    assert result.duration == pytest.approx(11.0, abs=0.01)
    assert [s.text for s in result.segments] == [s.text for s in jfk_transcript.segments]
    ends = [s.end for s in result.segments]
    assert ends == sorted(ends) and ends[-1] <= result.duration


def test_models_lists_the_served_model_and_its_aliases(client, tiny_engine):
    ids = [model.id for model in client.models.list()]
    assert ids[0] == tiny_engine.model_name and "whisper-1" in ids


def test_stream_sends_deltas_before_done(client, jfk_bytes, jfk_transcript):
    events = list(client.audio.transcriptions.create(file=("jfk.wav", jfk_bytes), model="whisper-1", stream=True))
    kinds = [event.type for event in events]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.done") == 1
    deltas = [event.delta for event in events if event.type == "transcript.text.delta"]
    assert deltas and "".join(deltas) == events[-1].text
    assert events[-1].usage.seconds == pytest.approx(11.0, abs=0.01)
    # The 11-s clip is cut at a pause into chunks of at most 10 s (serving.chunking.stream_max_chunk_s).
    assert len(deltas) >= 2


def test_stream_deltas_arrive_progressively_on_long_audio(server, long_once):
    """Each delta goes out when its chunk is decoded: the first comes long before the last."""
    path, _ = long_once
    arrivals: list[tuple[float, dict]] = []
    started = time.perf_counter()
    with httpx.stream(
        "POST",
        f"{server.url}/v1/audio/transcriptions",
        files={"file": (path.name, _head(path, seconds=60))},
        data={"model": "whisper-1", "stream": "true"},
        timeout=300,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.perf_counter() - started, json.loads(line[6:])))
    kinds = [event["type"] for _, event in arrivals]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.delta") >= 4
    first_delta = arrivals[0][0]
    done = arrivals[-1][0]
    assert first_delta < done / 2, f"first delta at {first_delta:.1f} s, done at {done:.1f} s: not progressive"


def _head(path, seconds: float) -> bytes:
    """The first ``seconds`` of a 16-bit mono WAV, as a WAV."""
    import wave

    with wave.open(str(path), "rb") as source:
        frames = source.readframes(int(seconds * source.getframerate()))
        params = source.getparams()
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(frames)
    return out.getvalue()
