"""Fixed-length clips of real speech (the GPU matrix's 10-s and 30-s inputs), made from an evaluation set.

A clip is whole consecutive utterances of the source set, joined while they fit, then padded with silence to the
exact length, so every clip of a set has the same shape (what latency per clip length means) and still has a
correct reference transcript (the joined texts), so WER stays measurable with real weights. Utterances are used
in order and the source is reused cyclically, so a set can have more clips than the source has speech. Clips are
16-bit PCM WAV files in the cache (``$ASRFORGE_CACHE/clips/<source>-<seconds>s-<count>/``), made once.
In configs: ``manifest: ${asrforge.clips:dev,10,32}``.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.experiments.datasets import load_manifest
from asrforge.paths import cache_dir, eval_data_dir

CLIPS_RESOLVER = "asrforge.clips"
MANIFEST = "manifest.jsonl"


def make_clips(source_manifest: Path, seconds: float, count: int, out_dir: Path) -> Path:
    """Write ``count`` clips of exactly ``seconds`` s and their manifest into ``out_dir``; returns the manifest."""
    manifest = out_dir / MANIFEST
    if manifest.is_file() and len(manifest.read_text(encoding="utf-8").splitlines()) == count:
        return manifest
    length = round(seconds * SAMPLE_RATE)
    source = [u for u in load_manifest(source_manifest).utterances if (u.duration_s or 0.0) <= seconds]
    speech = [(u, load_audio(u.audio)) for u in source]
    speech = [(u, audio) for u, audio in speech if len(audio) <= length]
    if not speech:
        raise ValueError(f"{source_manifest}: no utterance is {seconds:g} s or shorter")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, position = [], 0
    for index in range(count):
        parts, texts, used = [], [], 0
        while used + len(speech[position % len(speech)][1]) <= length and len(parts) < len(speech):
            utterance, audio = speech[position % len(speech)]
            parts.append(audio)
            texts.append(utterance.text)
            used += len(audio)
            position += 1
        clip = np.zeros(length, dtype=np.float32)
        clip[:used] = np.concatenate(parts)
        path = out_dir / f"clip{index:03d}.wav"
        _write_wav(path, clip)
        language = speech[(position - 1) % len(speech)][0].language
        entries.append({"audio": path.name, "text": " ".join(texts), "language": language, "duration_s": seconds})
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries), encoding="utf-8")
    tmp.replace(manifest)  # last, so an interrupted run is redone rather than half-used
    return manifest


def _write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def clips_manifest(source: str, seconds: float, count: int) -> str:
    """The manifest of ``count`` ``seconds``-s clips made from evaluation set ``source`` (made on first use)."""
    seconds, count = float(seconds), int(count)
    out_dir = cache_dir() / "clips" / f"{source}-{seconds:g}s-{count}"
    return str(make_clips(eval_data_dir() / source / MANIFEST, seconds, count, out_dir))


def register_clip_resolver() -> None:
    if not OmegaConf.has_resolver(CLIPS_RESOLVER):
        OmegaConf.register_new_resolver(CLIPS_RESOLVER, clips_manifest)
