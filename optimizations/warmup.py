"""Warm-up at load time with representative real speech, so the first user request does not pay for lazy
initialisation, kernel selection, allocator growth or compilation.

Silence is not representative: it decodes to a couple of tokens and never exercises long decodes or the
long-form (> one window) path. The default takes the shortest, median and longest clips of the dev set's tuning part
(``split.tune`` in ``conf/dataset/dev.yaml``): the test part is for reporting only.
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
    records = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    tune = tuning_files(dataset)
    records = [record for record in records if tune is None or Path(record["audio"]).name in tune] or records
    records.sort(key=lambda record: record["duration_s"])
    picks = {0, len(records) // 2, len(records) - 1}
    return [manifest.parent / records[index]["audio"] for index in sorted(picks)]


@register
@dataclass(frozen=True)
class Warmup(Plugin):
    name = "warmup"
    order = 100  # last: it must run the engine exactly as every other plugin left it
    requires = Requirements(engines=None)

    audio: Sequence[str] = ()  # files; empty = representative clips of the dev set's tuning part
    calls: int = 1  # per clip and batch size
    batch_sizes: Sequence[int] = (1,)

    def clip_paths(self) -> list[Path]:
        if self.audio:
            return [Path(path) for path in self.audio]
        return representative_clips(eval_data_dir() / "dev" / "manifest.jsonl")

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
        clips: list[np.ndarray] = [load_audio(path) for path in self.clip_paths()]
        for batch_size in self.batch_sizes:
            for clip in clips:
                for _ in range(self.calls):
                    engine.transcribe([clip] * batch_size)
        return engine
