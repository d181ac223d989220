"""The regression gate's output: a rich table of every figure, and the JSON files it writes (artefact, history,
baseline)."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from asrforge.experiments.gate_stats import FASTER, PASS, REGRESSION, UNSURE
from asrforge.experiments.gate_verdict import STALE, Figure
from asrforge.experiments.jsonl import append_jsonl

# A share of the CPU taken by other processes, or a difference in it between this run and the baseline, large enough
# to move the ratios (reports/gate/README.md, Limits).
BUSY = 0.2
VERDICT_STYLES = {PASS: "green", FASTER: "cyan", UNSURE: "yellow", REGRESSION: "bold red", STALE: "bold red"}


def _number(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}×" if kind == "speed" else f"{value:.2f}"


def _change(figure: Figure) -> str:
    if figure.change is None:
        return "—"
    return f"{figure.change:+.1%}" if figure.kind == "speed" else f"{figure.change:+.2f} pts"


def render_table(figures: Sequence[Figure], run: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> Table:
    """One row per figure: baseline, this run, the change, the test's p-value and the verdict."""
    settings = run["config"]
    trials = len(next(iter(run["subjects"].values()))["seconds"])
    foreign = [share for share in run["foreign_cpu"] if share is not None]
    busy = f", other processes used {statistics.median(foreign):.0%} of the CPU" if foreign else ""
    table = Table(
        title=f"asrforge gate on {run['device']['key']} ({run['device']['name']})",
        caption=(
            f"{trials} interleaved trials over {len(settings['files'])} files{busy}; speed = subject / "
            f"{settings['reference']} time per trial (median); a regression is a slowdown > "
            f"{settings['max_slowdown']:.0%} with one-sided Mann-Whitney p < {settings['alpha']}, or a WER rise > "
            f"{settings['wer_tolerance_points']} points"
            + (f"; baseline of commit {str(baseline.get('commit'))[:12]}" if baseline else "")
        ),
        caption_justify="left",
    )
    for column, justify in (("figure", "left"), ("baseline", "right"), ("measured", "right"), ("change", "right")):
        table.add_column(column, justify=justify)
    table.add_column("p (slower)", justify="right")
    table.add_column("verdict")
    for figure in figures:
        table.add_row(
            figure.name,
            _number(figure.baseline, figure.kind),
            _number(figure.measured, figure.kind),
            _change(figure),
            "—" if figure.p_value is None else f"{figure.p_value:.3g}",
            f"[{VERDICT_STYLES.get(figure.verdict, 'white')}]{figure.verdict}[/]",
        )
    return table


def print_report(
    figures: Sequence[Figure], run: Mapping[str, Any], baseline: Mapping[str, Any] | None, console: Console
) -> None:
    console.print(render_table(figures, run, baseline))
    for name, subject in run["subjects"].items():
        if not subject["deterministic"]:
            console.print(f"[yellow]note: {name} did not give the same transcript in every trial[/]")
    if baseline is not None:
        for package, version in (baseline.get("versions") or {}).items():
            if run["versions"].get(package) != version:
                console.print(f"note: {package} {run['versions'].get(package)} here, {version} in the baseline")
        if baseline["device"].get("name") != run["device"].get("name"):
            console.print(
                f"note: the baseline was measured on {baseline['device'].get('name')}: ratios carry over between "
                "machines only as far as both engines gain alike from the new one"
            )
        busy_now, busy_then = busy_share(run), busy_share(baseline)
        if busy_now is not None and busy_then is not None and abs(busy_now - busy_then) > BUSY:
            console.print(
                f"note: other processes used {busy_now:.0%} of the CPU here, {busy_then:.0%} while the baseline was "
                "measured: the winner's ratio to the peer moves with the load (reports/gate/README.md, Limits)"
            )
    if any(figure.verdict == FASTER for figure in figures):
        console.print("[cyan]faster than the baseline: `make gate-update` keeps the gain from slipping back[/]")


def busy_share(document: Mapping[str, Any]) -> float | None:
    """Median share of the CPU other processes used during the trials of a gate document."""
    shares = [share for share in document.get("foreign_cpu") or () if share is not None]
    return statistics.median(shares) if shares else None


def read_json(path: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_json(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """Write ``document`` (indented, so a rewritten baseline diffs readably) through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def append_history(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    """One JSON line per gate run, for CI history."""
    return append_jsonl(path, [document])
