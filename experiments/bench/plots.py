"""PNG plots of one run, rendered from its records: p50 latency against WER (one labelled point per row), and each
row's p50 as a ratio to the baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from asrforge.experiments.bench.rating import RatedRecord


def plot_run(items: Sequence[RatedRecord], out_dir: Path, slug: str) -> list[Path]:
    """Write ``<slug>_latency_vs_wer.png`` and ``<slug>_p50_ratio.png``; returns their paths."""
    return [
        _latency_vs_error(items, out_dir / f"{slug}_latency_vs_wer.png"),
        _p50_ratio(items, out_dir / f"{slug}_p50_ratio.png"),
    ]


def _latency_vs_error(items: Sequence[RatedRecord], path: Path) -> Path:
    measured = [item.record for item in items if item.record.measured]
    has = {metric: any(getattr(record, metric) is not None for record in measured) for metric in ("wer", "cer")}
    metric = "cer" if has["cer"] and not has["wer"] else "wer"
    label = metric.upper()
    scored = [record for record in measured if getattr(record, metric) is not None]
    unscored = [record for record in measured if getattr(record, metric) is None]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for record in scored:
        value = getattr(record, metric)
        ax.scatter(record.p50, value, color=_colour(record), s=50)
        ax.annotate(record.row, (record.p50, value), textcoords="offset points", xytext=(4, 4), fontsize=8)
    # Rows without an error rate (random weights) sit on a strip below the others: their latency is real, their
    # accuracy unknown, and a made-up y value would read as a measurement.
    if unscored:
        values = [getattr(record, metric) for record in scored] or [0.0]
        span = max(max(values) - min(values), 1.0)
        strip = min(values) - 0.3 * span if scored else 0.0
        for record in unscored:
            ax.scatter(record.p50, strip, facecolors="none", edgecolors=_colour(record), s=50)
            ax.annotate(record.row, (record.p50, strip), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if scored:
            ax.axhline(strip + 0.15 * span, color="grey", linewidth=0.6, linestyle="--")
            ax.text(0.01, strip, f"{label} n/a", transform=ax.get_yaxis_transform(), fontsize=8, color="grey")
        else:
            ax.set_yticks([])
            label = f"{label} n/a (random weights)"
    ax.set_xlabel("p50 latency per request (ms)")
    ax.set_ylabel(label if "n/a" in label else f"{label} (%)")
    first = items[0].record if items else None
    ax.set_title(f"{first.dataset_name if first else ''}: p50 latency vs {metric.upper()} (orange = peer reference)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _colour(record) -> str:
    return "tab:orange" if record.reference else "tab:blue"


def _p50_ratio(items: Sequence[RatedRecord], path: Path) -> Path:
    shown = [item for item in items if item.p50_ratio is not None or not item.record.measured]
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.35 * max(1, len(shown))), dpi=110)
    names = [item.record.row for item in shown]
    values = [item.p50_ratio or 0.0 for item in shown]
    ax.barh(names, values, color=[_colour(item.record) for item in shown])
    for index, item in enumerate(shown):
        if item.p50_ratio is not None:
            ax.text(item.p50_ratio, index, f" {item.p50_ratio:.2f}×", va="center", fontsize=8)
        else:
            reason = "refused" if item.record.refused else "error" if item.record.error else "no baseline"
            ax.text(0.01, index, f" {reason}", va="center", fontsize=8, color="grey")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("p50 latency / baseline p50 (< 1 is faster)")
    ax.set_title("speed relative to the unoptimised baseline")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
