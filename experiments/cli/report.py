"""``reports/<device>/cli.md`` rendered from ``cli.jsonl`` beside it (never edited by hand)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import median
from typing import Any

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import render_beside

GOAL = 0.8  # issue #20: the whole command at most 0.8x faster-whisper's
DESCRIPTIONS = {
    "one": "one 3.3-s clip: mostly the command's fixed cost (imports, model load)",
    "test": "the dev set's test part (no choice of ours read it)",
    "dev": "every dev file",
}


COLUMNS = ("file set", "files", "asrforge s (median)", "faster-whisper s (median)", "ratio", "runs")


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<device>/cli.md`` from the records beside it."""
    return [write_markdown(records.parent) for records in sorted(Path(root).glob("*/cli.jsonl"))]


def write_markdown(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / "cli.jsonl", render_markdown, "cli.md")


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    latest = records[-1]["timestamp"]
    run = [r for r in records if r["timestamp"] == latest]
    first = run[0]
    lines = [
        "# The whole command: `asrforge transcribe` against faster-whisper",
        "",
        "<!-- Rendered by experiments/cli/report.py from cli.jsonl; do not edit by hand. -->",
        "",
        f"Measured by `asrforge run cli` ({latest}, commit `{first['commit']}`) on {first['device'].get('name', '?')}, "
        f"{first['threads']} thread(s) for both. Each row times whole processes, as a user times a command: imports, "
        "model load and every file of the set: `asrforge transcribe --format text FILE...` (the served default: the "
        "CPU winner at faster-whisper's policy) against faster-whisper's README lines (experiments/cli/peer.py: the "
        "same int8 tiny.en weights, its default policy). Runs alternate which command goes first; the ratio is of "
        f"the medians (< 1: ours is faster). Goal: {md.ratio(GOAL, 1)} or less.",
        "",
        *md.header(COLUMNS, "lrrrrr"),
    ]
    for record in run:
        walls = record["wall_s"]
        ours, peer = median(walls["asrforge"]), median(walls["faster-whisper"])
        cells = (
            f"`{record['set']}`: {DESCRIPTIONS.get(record['set'], '')}",
            record["files"],
            md.num(ours, 2),
            md.num(peer, 2),
            md.ratio(record["ratio"], 3),
            len(walls["asrforge"]),
        )
        lines.append(md.row(cells))
    return "\n".join(lines) + "\n"
