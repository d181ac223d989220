"""WebSocket realtime transcription: PCM16 frames in, VAD-cut utterances with partial and final transcripts out."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
import websockets
from whisper_normalizer.english import EnglishTextNormalizer

from asrforge.audio import load_audio
from asrforge.engines.base import DecodeOptions

FRAME_S = 0.1
normalise = EnglishTextNormalizer()


def pcm16(path, rate: int = 16_000) -> bytes:
    audio = load_audio(path, sample_rate=rate)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


async def stream_file(url: str, audio: bytes, rate: int = 16_000, as_json: bool = False, pace_s: float = 0.0):
    """Send ``audio`` in 100-ms frames, commit, read to the end as docs/realtime.md says; returns every event."""
    events: list[dict] = []
    frame_bytes = int(FRAME_S * rate) * 2
    async with websockets.connect(f"{url}/v1/realtime?sample_rate={rate}", compression=None) as ws:
        events.append(json.loads(await ws.recv()))

        async def sender() -> None:
            for offset in range(0, len(audio), frame_bytes):
                frame = audio[offset : offset + frame_bytes]
                if as_json:
                    await ws.send(
                        json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()})
                    )
                else:
                    await ws.send(frame)
                await asyncio.sleep(pace_s)
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "end-of-input"}))

        send_task = asyncio.create_task(sender())
        last_item: str | None = "not yet"
        async for message in ws:
            event = json.loads(message)
            events.append(event)
            if event.get("client_event_id") == "end-of-input":
                last_item = event["item_id"]
                if last_item is None:
                    break
            if event["type"].endswith(".completed") and event["item_id"] == last_item:
                break
        await send_task
    return events


async def feed_session(session, audio: bytes, piece: int) -> None:
    """Feed a RealtimeSession ``audio`` in ``piece``-byte pieces, each waiting for the events it caused (so what is
    sent does not depend on this machine's speed), then commit and close it."""
    for offset in range(0, len(audio), piece):
        await session.add_pcm16(audio[offset : offset + piece])
        await session.drained()
    await session.commit("end")
    await session.drained()
    await session.close()


def finals(events: list[dict]) -> str:
    return " ".join(
        e["transcript"] for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
    )


def test_a_spoken_file_comes_back_as_final_transcripts_in_order(server, jfk_path, jfk_transcript):
    events = asyncio.run(stream_file(server.ws_url, pcm16(jfk_path)))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "transcription_session.created"
    assert "input_audio_buffer.speech_started" in kinds
    assert normalise(finals(events)).split() == normalise(jfk_transcript.text).split()
    # Per item: started, (deltas), stopped, committed, completed, in that order.
    for item in {e["item_id"] for e in events if e.get("item_id")}:
        own = [e["type"].rsplit(".", 1)[-1] for e in events if e.get("item_id") == item]
        own = [k for k in own if k != "delta"]
        assert own == ["speech_started", "speech_stopped", "committed", "completed"], own


def test_partials_are_words_the_final_transcript_begins_with(tiny_engine, dev_dir):
    """Driven at the session level, waiting for each partial before more audio comes, so the test does not depend
    on how fast this machine decodes: every partial that two hypotheses agree on is sent, never taken back."""
    from asrforge.serving.realtime import RealtimeSession
    from asrforge.serving.scheduler import InferenceScheduler
    from asrforge.serving.settings import RealtimeSettings
    from asrforge.vad import SpeechDetector

    audio = pcm16(dev_dir / "ljspeech_LJ001-0001.wav")  # one 10-s sentence without long pauses
    events: list[dict] = []

    async def send(event: dict) -> None:
        events.append(event)

    async def run() -> None:
        scheduler = InferenceScheduler(tiny_engine, warmup=False)
        scheduler.start()
        session = RealtimeSession(scheduler, SpeechDetector(), RealtimeSettings(), 16_000, send)
        await feed_session(session, audio, int(RealtimeSettings().buffer_ms * 16_000 / 1000) * 2)
        scheduler.stop()

    asyncio.run(run())
    deltas = [e for e in events if e["type"].endswith(".delta")]
    completed = [e for e in events if e["type"].endswith(".completed")]
    assert len(deltas) >= 3, events
    for item in {d["item_id"] for d in deltas}:
        partial = "".join(d["delta"] for d in deltas if d["item_id"] == item).split()
        final = next(e["transcript"] for e in completed if e["item_id"] == item).split()
        settled = partial[:-2]  # the last words agreed on may still change once the audio after them is heard
        assert settled == final[: len(settled)], (partial, final)
    kinds = [e["type"] for e in events]
    assert kinds.index("conversation.item.input_audio_transcription.delta") < kinds.index(
        "input_audio_buffer.speech_stopped"
    )


def test_sample_rate_and_json_frames(server, jfk_path, jfk_transcript):
    """OpenAI's own form: base64 JSON frames at 24 kHz."""
    events = asyncio.run(stream_file(server.ws_url, pcm16(jfk_path, 24_000), rate=24_000, as_json=True))
    assert normalise(finals(events)).split() == normalise(jfk_transcript.text).split()


def test_concurrent_sessions_get_their_own_transcripts(server, dev_dir, dev_manifest):
    names = ["fasterwhisper_jfk.wav", dev_manifest[0]["audio"], dev_manifest[5]["audio"]]

    async def all_at_once() -> list[list[dict]]:
        return await asyncio.gather(*(stream_file(server.ws_url, pcm16(dev_dir / n)) for n in names))

    alone = [finals(asyncio.run(stream_file(server.ws_url, pcm16(dev_dir / n)))) for n in names]
    together = [finals(events) for events in asyncio.run(all_at_once())]
    assert together == alone


def test_bad_messages_get_error_events_and_the_session_goes_on(server, jfk_path, jfk_transcript):
    async def run() -> list[dict]:
        async with websockets.connect(f"{server.ws_url}/v1/realtime") as ws:
            await ws.recv()
            replies = []
            for bad in (b"\x01\x02\x03", "not json", json.dumps({"type": "response.create"})):
                await ws.send(bad)
                replies.append(json.loads(await ws.recv()))
            return replies

    replies = asyncio.run(run())
    assert [r["type"] for r in replies] == ["error"] * 3
    assert "even number of bytes" in replies[0]["error"]["message"]
    events = asyncio.run(stream_file(server.ws_url, pcm16(jfk_path)))
    assert normalise(finals(events)).split() == normalise(jfk_transcript.text).split()


@pytest.mark.parametrize("rate", [4000, 96000])
def test_unsupported_sample_rates_are_refused(server, rate):
    async def connect() -> None:
        async with websockets.connect(f"{server.ws_url}/v1/realtime?sample_rate={rate}") as ws:
            await ws.recv()

    with pytest.raises(websockets.exceptions.InvalidStatus):
        asyncio.run(connect())


def test_partials_are_sent_while_http_work_keeps_the_queue_busy(tiny_engine, dev_dir, jfk_path):
    """The served engine has no streaming plugin; the session switches kv_reuse on for itself, so a partial costs the
    new audio only and runs under load (realtime first, within its share), where it used to wait for an empty queue.
    Driven at the session level, each tick waiting for its partial, so the test does not depend on machine speed."""
    from asrforge.serving.realtime import RealtimeSession
    from asrforge.serving.scheduler import InferenceScheduler, Priority, cancel
    from asrforge.serving.settings import RealtimeSettings, SchedulerSettings
    from asrforge.vad import SpeechDetector

    assert not tiny_engine.stream_settings.incremental
    audio = pcm16(dev_dir / "ljspeech_LJ001-0001.wav")  # one 10-s sentence without long pauses
    http_clip = load_audio(jfk_path)
    events: list[dict] = []

    async def send(event: dict) -> None:
        events.append(event)

    async def run() -> int:
        scheduler = InferenceScheduler(tiny_engine, SchedulerSettings(max_batch_size=1, max_wait_s=None), warmup=False)
        scheduler.start()
        http = scheduler.submit([http_clip] * 40, DecodeOptions(), Priority.BATCH)  # more than the session lasts
        session = RealtimeSession(scheduler, SpeechDetector(), RealtimeSettings(), 16_000, send)
        step = int(RealtimeSettings().buffer_ms * 16_000 / 1000) * 2
        for offset in range(0, len(audio), step):
            await session.add_pcm16(audio[offset : offset + step])
            await session.drained()
        still_queued = scheduler.queued
        cancel(http)
        await session.commit("end")
        await session.drained()
        await session.close()
        scheduler.stop()
        return still_queued

    assert asyncio.run(run()) > 0  # HTTP work was waiting the whole time
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert len(deltas) >= 2, [e["type"] for e in events]
    completed = {e["item_id"]: e["transcript"].split() for e in events if e["type"].endswith(".completed")}
    for item in {d["item_id"] for d in deltas}:
        partial = "".join(d["delta"] for d in deltas if d["item_id"] == item).split()
        settled = partial[:-2]  # the last words sent may still be re-cut once the audio after them is heard
        assert normalise(" ".join(settled)) == normalise(" ".join(completed[item][: len(settled)])), partial
