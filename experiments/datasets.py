"""Evaluation sets: a ``manifest.jsonl`` of real speech with reference transcripts, one JSON object per file.

Each line has ``audio`` (a path, relative ones resolved against the manifest's folder), ``text`` (the reference),
``language`` (ISO 639-1) and optionally ``duration_s``; other keys are kept out of the way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from asrforge.paths import eval_data_dir

EVAL_DATA_RESOLVER = "asrforge.eval_data"


def register_resolvers() -> None:
    """``${asrforge.eval_data:dev/manifest.jsonl}`` in configs: a path inside the evaluation data folder."""
    if not OmegaConf.has_resolver(EVAL_DATA_RESOLVER):
        OmegaConf.register_new_resolver(EVAL_DATA_RESOLVER, lambda relative: str(eval_data_dir() / relative))


@dataclass(frozen=True)
class Utterance:
    audio: Path
    text: str
    language: str | None
    duration_s: float | None = None


@dataclass(frozen=True)
class Dataset:
    name: str
    manifest: Path
    utterances: tuple[Utterance, ...]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def display_manifest(self) -> str:
        """The manifest path as a report shows it: relative to ``$ASRFORGE_EVAL_DATA`` when inside it."""
        try:
            return f"$ASRFORGE_EVAL_DATA/{self.manifest.relative_to(eval_data_dir().resolve())}"
        except ValueError:
            return str(self.manifest)


def load_manifest(manifest: str | os.PathLike, name: str | None = None, limit: int | None = None) -> Dataset:
    """Read a manifest; ``limit`` keeps its first N files. Raises with the line number on a malformed line."""
    path = Path(manifest).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"no manifest at {path} (set ASRFORGE_EVAL_DATA or dataset.manifest=PATH to a manifest.jsonl)"
        )
    utterances: list[Utterance] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            audio = Path(entry["audio"]).expanduser()
            utterances.append(
                Utterance(
                    audio=audio if audio.is_absolute() else path.parent / audio,
                    text=str(entry["text"]),
                    language=entry.get("language"),
                    duration_s=entry.get("duration_s"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a manifest entry with 'audio' and 'text' ({exc})") from exc
        if limit is not None and len(utterances) >= limit:
            break
    if not utterances:
        raise ValueError(f"{path}: the manifest lists no files")
    return Dataset(name=name or path.parent.name, manifest=path, utterances=tuple(utterances))
