"""The studies: one sub-package each (bench, load, partials, gateway, streaming, subtitles, translation, shrink,
diarization, cli, gate), each with a ``run`` module whose ``main(argv)`` measures and writes records, and a ``report``
module whose ``render_all(root)`` re-renders the committed reports under ``root`` from those records.
``asrforge run <study>`` and ``asrforge report`` reach them through this table (``run_main``, ``report_main``: entry
points the CLI finds); nothing here imports a study until it is asked for."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from asrforge.quiet import quiet_third_party

STUDIES = (
    "bench", "load", "partials", "gateway", "streaming", "subtitles", "translation", "shrink", "diarization", "cli",
    "gate",
)  # fmt: skip
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


def run_main(argv: Sequence[str]) -> int:
    """``asrforge run <study> [options]`` (registered as an ``asrforge.commands`` entry point)."""
    argv = list(argv)
    if not argv or argv[0] not in STUDIES:
        print(f"usage: asrforge run {{{','.join(STUDIES)}}} [options]  (asrforge run <study> --help)", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "bench":
        from asrforge.data import missing_message

        missing = missing_message(argv[1:])
        if missing:
            print(missing, file=sys.stderr)
            return 2
    if argv[0] == "gate":
        quiet_third_party()
    return run_study(argv[0], argv[1:])


def report_main(argv: Sequence[str]) -> int:
    """``asrforge report [--dir DIR]``: every study's reports re-rendered from their records, one path a line."""
    parser = argparse.ArgumentParser(prog="asrforge report", description=report_main.__doc__)
    parser.add_argument("--dir", type=Path, default=Path("reports"), help="the report root (default: reports)")
    args = parser.parse_args(list(argv))
    quiet_third_party()
    for path in render_reports(args.dir):
        print(path)
    return 0
