"""Warm-up at load time with representative real speech, so the first user request does not pay for lazy
initialisation, kernel selection, allocator growth or compilation.

Silence is not representative: it decodes to a couple of tokens and never exercises long decodes or the
long-form (> one window) path. The default reads the dev set's tuning part only (``split.tune`` in
``conf/dataset/dev.yaml``; the test part is for reporting): its shortest and median clips, and its longest clips
joined into one recording past a 30-s window (no tuning clip is that long alone) for the long-form path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrforge.audio import load_audio
from asrforge.config import tuning_files
from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, Target, register
from asrforge.paths import eval_data_dir


def representative_clips(manifest: Path, dataset: str = "dev") -> list[Path]:
    """Shortest, median and longest clip of a manifest's tuning part (different lengths exercise different shapes);
    every clip when ``dataset`` names no split."""
    clips = tuning_clips_by_duration(manifest, dataset)
    return [clips[index][0] for index in sorted({0, len(clips) // 2, len(clips) - 1})]


def tuning_clips_by_duration(manifest: Path, dataset: str = "dev") -> list[tuple[Path, float]]:
    """A manifest's tuning-part clips with their seconds (every clip when ``dataset`` names no split), shortest
    first."""
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    tune = tuning_files(dataset)
    records = [record for record in records if tune is None or Path(record["audio"]).name in tune] or records
    records.sort(key=lambda record: record["duration_s"])
    return [(manifest.parent / record["audio"], float(record["duration_s"])) for record in records]


@register
@dataclass(frozen=True)
class Warmup(Plugin):
    name = "warmup"
    order = 100  # last: it must run the engine exactly as every other plugin left it
    requires = Requirements(engines=None)

    audio: Sequence[str] = ()  # files; empty = representative clips of the dev set's tuning part
    long_form_s: float = 40.0  # the default's joined long-form clip is at least this long (past a 30-s window)
    calls: int = 1  # per clip and batch size
    batch_sizes: Sequence[int] = (1,)

    def clip_groups(self) -> list[list[Path]]:
        """The warm-up recordings, each as the files joined into it."""
        if self.audio:
            return [[Path(path)] for path in self.audio]
        clips = tuning_clips_by_duration(eval_data_dir() / "dev" / "manifest.jsonl")
        joined, seconds = [], 0.0
        for path, duration in reversed(clips):  # longest first, until past a window
            joined.append(path)
            seconds += duration
            if seconds >= self.long_form_s:
                break
        return [[clips[0][0]], [clips[len(clips) // 2][0]], joined]

    def clip_paths(self) -> list[Path]:
        return [path for group in self.clip_groups() for path in group]

    def refusal(self, target: Target) -> str | None:
        if not self.audio and not (eval_data_dir() / "dev" / "manifest.jsonl").is_file():
            return (
                f"warmup needs representative speech: no dev set at {eval_data_dir()} "
                "(set ASRFORGE_EVAL_DATA or optimizations.warmup.audio=[files])"
            )
        missing = [str(path) for path in self.audio if not Path(path).is_file()]
        if missing:
            return f"warmup audio not found: {', '.join(missing)}"
        return super().refusal(target)

    def apply(self, engine: BaseEngine) -> BaseEngine:
        clips = [np.concatenate([load_audio(path) for path in group]) for group in self.clip_groups()]
        for batch_size in self.batch_sizes:
            for clip in clips:
                for _ in range(self.calls):
                    engine.transcribe([clip] * batch_size)
        return engine
