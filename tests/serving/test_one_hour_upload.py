"""A one-hour upload is decoded and cut into chunks in bounded memory: a few copies of its samples, no more."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
import wave

import pytest

from asrforge.serving.service import TranscriptionService
from asrforge.serving.settings import ServerSettings

HOUR_S = 3600


@pytest.fixture(scope="module")
def hour_of_speech(long_once) -> bytes:
    """The 248-s recording repeated to one hour, as the 16-bit WAV a client would upload (115 MB)."""
    path, _ = long_once
    with wave.open(str(path), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    repeats = -(-HOUR_S * params.framerate * params.sampwidth // len(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes((frames * repeats)[: HOUR_S * params.framerate * params.sampwidth])
    return out.getvalue()


def test_one_hour_is_planned_into_window_sized_views_within_a_few_copies(tiny_engine, hour_of_speech):
    service = TranscriptionService(scheduler=None, settings=ServerSettings())

    async def plan():
        audio = await service.decode(hour_of_speech)
        return audio, await service.chunks(audio, tiny_engine)

    tracemalloc.start()
    try:
        audio, chunks = asyncio.run(plan())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    samples_bytes = audio.samples.nbytes
    assert audio.duration_s == pytest.approx(HOUR_S, abs=0.1)
    assert peak <= 3 * samples_bytes, f"peak {peak / 2**20:.0f} MiB for {samples_bytes / 2**20:.0f} MiB of samples"
    assert len(chunks) >= HOUR_S / 30 * 0.9
    assert all(chunk.end - chunk.start <= 30 * 16_000 for chunk in chunks)
    assert all(chunk.audio(audio.samples).base is audio.samples for chunk in chunks)
