"""Decoding real speech from every container/codec users upload, and refusing what is not audio."""

from __future__ import annotations

import io
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import soxr

from asrforge.audio import is_plain_wav, load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.errors import AudioDecodeError


def encode(samples: np.ndarray, container: str, codec: str, rate: int, channels: int = 2) -> bytes:
    """Encode mono float32 ``samples`` (already at ``rate``) with PyAV's bundled FFmpeg, duplicated to ``channels``."""
    layout = "stereo" if channels == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        planes = np.ascontiguousarray(np.stack([samples] * channels).astype(np.float32))
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
        frame.sample_rate = rate
        fit = av.AudioResampler(
            format=stream.codec_context.format.name,
            layout=layout,
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for chunk in fit.resample(frame):
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def best_alignment(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 800) -> float:
    """Correlation at the best lag (lossy codecs add a few ms of encoder delay)."""
    window = slice(2000, 2000 + 8 * SAMPLE_RATE)
    ref = reference[window]
    scores = []
    for lag in range(0, max_lag, 4):
        piece = decoded[window.start + lag : window.stop + lag]
        scores.append(np.corrcoef(ref, piece)[0, 1])
    return max(scores)


@pytest.fixture(scope="module")
def speech(jfk_path: Path) -> np.ndarray:
    return load_audio(jfk_path)


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [
        ("wav", "pcm_s16le", 44_100),
        ("flac", "flac", 44_100),
        ("mp3", "libmp3lame", 44_100),
        ("ogg", "libopus", 48_000),
        ("ipod", "aac", 44_100),  # .m4a
        ("webm", "libopus", 48_000),
    ],
)
def test_every_format_decodes_to_the_same_16k_mono_speech(speech, container, codec, rate):
    data = encode(soxr.resample(speech, SAMPLE_RATE, rate), container, codec, rate)
    decoded = load_audio(data)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size / SAMPLE_RATE - speech.size / SAMPLE_RATE) < 0.1
    assert best_alignment(speech, decoded) > 0.97


def test_paths_file_objects_and_bytes_give_identical_samples(jfk_path):
    from_path = load_audio(jfk_path)
    from_bytes = load_audio(jfk_path.read_bytes())
    with open(jfk_path, "rb") as handle:
        from_file = load_audio(handle)
    assert np.array_equal(from_path, from_bytes) and np.array_equal(from_path, from_file)


def test_stereo_is_averaged_to_mono(speech):
    left, right = speech, np.zeros_like(speech)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.stack([left, right], axis=1) * 32767).astype("<i2").tobytes())
    mono = load_audio(buffer.getvalue())
    assert np.allclose(mono, speech / 2, atol=2e-4)


def test_8khz_telephone_audio_is_upsampled(dev_dir):
    audio = load_audio(dev_dir / "osr_us_000_0034_8k.wav")
    assert abs(audio.size / SAMPLE_RATE - 35.5) < 0.1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is not audio at all " * 40, "not a readable audio file"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a readable audio file"),
    ],
)
def test_garbage_raises_the_typed_error(payload, message):
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(payload)


def test_empty_file_on_disk_raises(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        load_audio(empty)


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [
        ("wav", "pcm_s16le", 16_000),
        ("mp3", "libmp3lame", 16_000),
        ("flac", "flac", 16_000),
        ("webm", "libopus", 48_000),
    ],
)
def test_truncated_upload_raises(speech, container, codec, rate):
    data = encode(soxr.resample(speech, SAMPLE_RATE, rate), container, codec, rate)
    with pytest.raises(AudioDecodeError, match="truncated|corrupt|readable"):
        load_audio(data[: len(data) // 2])


def test_header_only_wav_decodes_to_nothing_and_raises(jfk_path):
    with pytest.raises(AudioDecodeError):
        load_audio(jfk_path.read_bytes()[:44])


def test_video_without_audio_is_refused():
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 32, 32
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), index * 40, dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        load_audio(buffer.getvalue())


def test_one_hour_file_decodes_in_bounded_memory(tmp_path):
    # One hour of 8 kHz 16-bit speech-band noise: the output (16 kHz float32) is 230 MB; the decoder may hold the
    # output plus one concatenation copy, not the source's decoded PCM as well.
    path = tmp_path / "hour.wav"
    seconds, rate = 3600, 8000
    rng = np.random.default_rng(0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        block = (rng.standard_normal(rate * 60) * 3000).astype("<i2").tobytes()
        for _ in range(seconds // 60):
            out.writeframes(block)
    output_bytes = seconds * SAMPLE_RATE * 4
    tracemalloc.start()
    try:
        audio = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert abs(audio.size - seconds * SAMPLE_RATE) < SAMPLE_RATE
    assert peak < 2.5 * output_bytes, f"peak {peak / 2**20:.0f} MiB for {output_bytes / 2**20:.0f} MiB of output"


def _pcm_wav(samples: np.ndarray, rate: int, width: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(width)
        out.setframerate(rate)
        scale, dtype = (32767, "<i2") if width == 2 else (127, "i1")
        pcm = np.round(samples * scale).astype(dtype)
        out.writeframes(pcm.tobytes() if width == 2 else (pcm.astype(np.int16) + 128).astype("u1").tobytes())
    return buffer.getvalue()


def test_only_a_16k_pcm16_wav_counts_as_plain_and_it_decodes_to_the_same_speech(speech, jfk_path):
    """The server decodes a plain WAV on its event loop: the check must pass only what needs neither FFmpeg nor a
    resampler, and such a file must decode like any other."""
    plain = _pcm_wav(speech, SAMPLE_RATE, 2)
    assert is_plain_wav(plain) and is_plain_wav(jfk_path.read_bytes())
    assert best_alignment(speech, load_audio(plain)) > 0.99
    assert not is_plain_wav(_pcm_wav(soxr.resample(speech, SAMPLE_RATE, 48_000), 48_000, 2))  # needs soxr
    assert not is_plain_wav(_pcm_wav(speech, SAMPLE_RATE, 1))  # 8-bit: FFmpeg
    assert not is_plain_wav(encode(speech, "flac", "flac", SAMPLE_RATE, channels=1))
    assert not is_plain_wav(b"RIFF\x00\x00\x00\x00WAVE") and not is_plain_wav(b"")
