"""Shared fixtures: the real evaluation audio (by path, never copied) and the offline switches for every test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from asrforge.engines.base import BaseEngine

# Nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from asrforge.paths import eval_data_dir  # noqa: E402


def missing_eval_data(what: str, path: Path) -> None:
    """A test that needs the evaluation set and cannot find it: skipped on a developer's machine, failed in CI
    (``CI=true``), where a skip would turn every real-speech test green without running it."""
    message = f"{what} is not at {path}: `asrforge data` downloads an evaluation set, or set ASRFORGE_EVAL_DATA"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    path = eval_data_dir() / "dev"
    if not (path / "manifest.jsonl").is_file():
        missing_eval_data("the real-speech dev set", path)
    return path


@pytest.fixture(scope="session")
def multi_dir() -> Path:
    path = eval_data_dir() / "multi"
    if not (path / "picovoice_test-de.wav").is_file():
        missing_eval_data("the multilingual evaluation clips", path)
    return path


@pytest.fixture(scope="session")
def dev_manifest(dev_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (dev_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def jfk_path(dev_dir: Path) -> Path:
    return dev_dir / "fasterwhisper_jfk.wav"


@pytest.fixture(scope="session")
def beam_clip_path(dev_dir: Path) -> Path:
    """A clip where tiny.en's beam search (5 beams) and greedy decoding give different words, on both engines."""
    return dev_dir / "ljspeech_LJ001-0030.wav"  # "A very few years" greedy, "A few years" at beam 5


class ChatServer:
    """tests/translation/chat_server.py running as its own process: ``url`` is its OpenAI base URL, ``requests()``
    the payloads it received (oldest first)."""

    def __init__(self, url: str, log: Path):
        self.url = url
        self.log = log

    def requests(self, model: str | None = None) -> list[dict]:
        lines = self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []
        return [r for r in map(json.loads, lines) if model is None or r["model"] == model]


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """A real chat-completions server process on loopback with explicit, deterministic answers (translation back-end
    tests; its docstring says what it answers)."""
    log = tmp_path_factory.mktemp("chat_server") / "requests.jsonl"
    script = Path(__file__).parent / "translation" / "chat_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--log", str(log), "--slow-s", "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(process.stdout.readline())
        yield ChatServer(f"http://127.0.0.1:{port}/v1", log)
    finally:
        process.terminate()
        process.wait(10)


# Exact (same transcript as the unoptimised engine) and faster than plain fp32: what a test server needs.
TEST_PLUGINS = ["eval_mode", "sdpa", "cached_logit_masks"]


@pytest.fixture(scope="session")
def tiny_engine() -> BaseEngine:
    from asrforge.combination import Combination  # imported here: the gateway tests load no torch

    return Combination.named("whisper-tiny-en", TEST_PLUGINS, device="cpu").load()


@pytest.fixture(scope="session")
def long_once(dev_dir: Path) -> tuple[Path, dict]:
    """The 248-s concatenation of every dev utterance once, and its manifest record (utterance times)."""
    folder = dev_dir.parent / "long"
    if not (folder / "manifest.jsonl").is_file():
        missing_eval_data("the long-form evaluation files", folder)
    records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    record = next(r for r in records if r["audio"] == "dev_concat_once.wav")
    return folder / record["audio"], record


@pytest.fixture(scope="session")
def qwen3_clip(dev_dir: Path) -> Path:
    """One short real clip (3.3 s of LibriSpeech) for the checkpoint tests."""
    return dev_dir / "librispeech_1988-24833-0000.wav"


@pytest.fixture(scope="session")
def qwen3_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Two tiny Qwen3-ASR checkpoints (seeds 1 and 2) saved with ``save_pretrained`` (tests/qwen3_checkpoints.py)."""
    from qwen3_checkpoints import save_tiny_checkpoint

    return {seed: save_tiny_checkpoint(tmp_path_factory.mktemp(f"qwen3-seed{seed}"), seed) for seed in (1, 2)}


@pytest.fixture(scope="session")
def qwen3_expected(qwen3_checkpoints: dict[int, Path], qwen3_clip: Path) -> dict[int, str]:
    """What transformers alone transcribes from each checkpoint: every entry point must say exactly this."""
    from qwen3_checkpoints import direct_transcript

    from asrforge.audio import load_audio

    audio = load_audio(qwen3_clip)
    expected = {seed: direct_transcript(path, audio) for seed, path in qwen3_checkpoints.items()}
    assert expected[1] != expected[2], "two seeds must transcribe differently, or no test here could fail"
    return expected


def wav_bytes(samples, sample_rate: int = 16_000) -> bytes:
    """16-bit mono WAV bytes of float samples (an upload built in a test)."""
    import io
    import wave

    import numpy as np

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="session")
def to_wav():
    return wav_bytes


@pytest.fixture(scope="session")
def two_speakers(dev_dir: Path):
    """A short two-speaker recording of dev clips, LibriSpeech reader 1988, then 2412, then 1988 again, 0.8 s of
    silence around each: (16 kHz samples, [(start_s, end_s, reader)] of each part)."""
    import numpy as np

    from asrforge.audio import load_audio

    parts = (
        ("librispeech_1988-24833-0002.wav", "1988"),
        ("librispeech_2412-153948-0002.wav", "2412"),
        ("librispeech_1988-24833-0003.wav", "1988"),
    )
    gap = np.zeros(int(0.8 * 16_000), dtype=np.float32)
    pieces, spans, cursor = [gap], [], gap.size
    for name, reader in parts:
        clip = load_audio(dev_dir / name)
        spans.append((cursor / 16_000, (cursor + clip.size) / 16_000, reader))
        pieces += [clip, gap]
        cursor += clip.size + gap.size
    return np.concatenate(pieces), spans
