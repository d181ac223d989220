"""The regression gate's output: a rich table of every figure, and the JSON files it writes (artefact, history)."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from asrforge.experiments.gate.stats import FASTER, INFO, PASS, REGRESSION, UNSURE, Figure
from asrforge.experiments.jsonl import append_jsonl

VERDICT_STYLES = {PASS: "green", FASTER: "cyan", UNSURE: "yellow", REGRESSION: "bold red", INFO: "dim"}


def _number(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return {"speed": f"{value:.3f} s", "peer": f"{value:.3f}×"}.get(kind, f"{value:.2f}")


def _change(figure: Figure) -> str:
    if figure.change is None:
        return "—"
    return f"{figure.change:+.1%}" if figure.kind == "speed" else f"{figure.change:+.2f} pts"


def busy_share(document: Mapping[str, Any]) -> float | None:
    """Median share of the CPU other processes used during the trials of a gate document."""
    shares = [share for share in document.get("foreign_cpu") or () if share is not None]
    return statistics.median(shares) if shares else None


def render_table(figures: Sequence[Figure], run: Mapping[str, Any]) -> Table:
    """One row per figure: base, head, the change, the test's p-value and the verdict."""
    settings, base = run["config"], run["base"]
    busy = busy_share(run)
    table = Table(
        title=f"asrforge gate on {run['device']['key']} ({run['device']['name']}): head vs base {base['commit'][:12]}",
        caption=(
            f"base: {base['how']}. {run['trials']} interleaved trials over {len(settings['files'])} files"
            + ("" if busy is None else f", other processes used {busy:.0%} of the CPU")
            + f"; speed = seconds per trial (median); a regression is a slowdown > {settings['max_slowdown']:.0%} "
            f"with one-sided Wilcoxon p < {settings['alpha']}, or a WER rise > {settings['wer_tolerance_points']} "
            f"points"
            + ("" if settings["reference"] is None else f"; the ratios to the {settings['reference']} are not judged")
        ),
        caption_justify="left",
    )
    for column, justify in (("figure", "left"), ("base", "right"), ("head", "right"), ("change", "right")):
        table.add_column(column, justify=justify)
    table.add_column("p (slower)", justify="right")
    table.add_column("verdict")
    for figure in figures:
        table.add_row(
            figure.name,
            _number(figure.base, figure.kind),
            _number(figure.head, figure.kind),
            _change(figure),
            "—" if figure.p_value is None else f"{figure.p_value:.3g}",
            f"[{VERDICT_STYLES.get(figure.verdict, 'white')}]{figure.verdict}[/]",
        )
    return table


def print_report(figures: Sequence[Figure], run: Mapping[str, Any], console: Console) -> None:
    console.print(render_table(figures, run))
    for name, subject in run["subjects"].items():
        for side in ("head", "base"):
            if subject.get(side) and not subject[side]["deterministic"]:
                console.print(f"[yellow]note: {name} ({side}) did not give the same transcript in every trial[/]")
        if subject.get("head") and subject.get("base") and subject["head"]["runs"] != subject["base"]["runs"]:
            console.print(
                f"note: {name} runs differently on the two sides: base {subject['base']['runs']}, "
                f"head {subject['head']['runs']}"
            )


def write_json(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """Write ``document`` (indented) through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def append_history(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """One JSON line per gate run, for CI history."""
    return append_jsonl(path, [document])
