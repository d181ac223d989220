"""The Server-Timing header: where a transcription's time went on the server, the engine's part being the very time
/metrics counts, so a client can subtract the model from what it waited and see the server's overhead."""

from __future__ import annotations

import re

import httpx

from asrforge.serving.timing import PARTS, WITHIN, parse_header

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def _engine_seconds(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return float(re.search(r"^asrforge_inference_seconds_sum (\S+)$", text, re.MULTILINE).group(1))


def test_a_transcription_says_where_its_time_went(server, jfk_bytes, jfk_transcript):
    before = _engine_seconds(server.url)
    response = httpx.post(
        server.url + TRANSCRIPTIONS, files={"file": ("jfk.wav", jfk_bytes)}, data={"model": "whisper-1"}, timeout=120
    )
    engine_s = _engine_seconds(server.url) - before
    assert response.status_code == 200 and response.json()["text"] == jfk_transcript.text
    parts = parse_header(response.headers["server-timing"])
    assert list(parts) == list(PARTS)  # every part, in the order the request went through them
    assert all(value >= 0 for value in parts.values()), parts
    # The parts are disjoint stretches of the request, so together they fit in its total.
    assert sum(value for name, value in parts.items() if name not in WITHIN and name != "total") <= parts["total"]
    assert parts["upload"] <= parts["parse"]
    assert abs(parts["engine"] - engine_s * 1000) < 0.01  # the engine time /metrics counted for this request


def test_an_error_response_carries_the_total_only(server):
    response = httpx.post(server.url + TRANSCRIPTIONS, files={"file": ("x.wav", b"garbage")}, data={"model": "x"})
    assert response.status_code == 404
    assert list(parse_header(response.headers["server-timing"])) == ["upload", "parse", "total"]
