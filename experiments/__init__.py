"""The studies: one sub-package each (bench, load, gateway, streaming, subtitles, translation, shrink, diarization,
gate), each with a ``run`` module whose ``main(argv)`` measures and writes records, and a ``report`` module whose
``render_all(root)`` re-renders the committed reports under ``root`` from those records. ``asrforge run <study>``
and ``asrforge report`` reach them through this table; nothing here imports a study until it is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

STUDIES = ("bench", "load", "gateway", "streaming", "subtitles", "translation", "shrink", "diarization", "gate")
# The gate's README is rendered by its evidence run (experiments/gate/evidence.py), from measurements it makes.
_NO_REPORT = {"gate"}


def run_study(study: str, argv: Sequence[str]) -> int:
    """Run one study with its own command-line arguments; its exit status."""
    if study not in STUDIES:
        raise KeyError(f"unknown study {study!r} (known: {', '.join(STUDIES)})")
    module = f"asrforge.experiments.{study}.run"
    return importlib.import_module(module).main(list(argv)) or 0


def render_reports(root: str | Path = "reports") -> list[Path]:
    """Every study's committed reports under ``root``, re-rendered from their records (nothing is measured)."""
    written: list[Path] = []
    for study in STUDIES:
        if study in _NO_REPORT:
            continue
        written += importlib.import_module(f"asrforge.experiments.{study}.report").render_all(Path(root))
    return written
