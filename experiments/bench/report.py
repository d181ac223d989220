"""``reports/<device>/README.md``: the records of ``results.jsonl`` as markdown tables (one per dataset and run),
with each row's speed as a ratio to the baseline and to the peer row of the same run. Rendered, never hand-edited.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from asrforge.experiments.bench.matrix import BASELINE
from asrforge.experiments.bench.records import BenchRecord, read_records

RESULTS = "results.jsonl"
BUSY_HOST = 0.1  # foreign CPU share above which a row's latency is flagged as disturbed
README = "README.md"
WINNER = "winner.yaml"


@dataclass(frozen=True)
class RatedRecord:
    record: BenchRecord
    p50_ratio: float | None  # row p50 / baseline p50 of the same run
    vs_peer: float | None  # row p50 / the reference (peer) row's p50 of the same run


def rate(records: Sequence[BenchRecord]) -> list[RatedRecord]:
    """Each record with its speed ratios, computed within its own (run, dataset)."""

    def p50_of(run: BenchRecord, predicate) -> float | None:
        for other in records:
            if (
                other.run_id == run.run_id
                and other.dataset_name == run.dataset_name
                and other.measured
                and predicate(other)
            ):
                return other.p50
        return None

    rated = []
    for record in records:
        baseline = p50_of(record, lambda other: other.row == BASELINE and not other.reference)
        peer = p50_of(record, lambda other: other.reference)
        p50 = record.p50 if record.measured else None
        rated.append(
            RatedRecord(
                record,
                p50_ratio=p50 / baseline if p50 is not None and baseline else None,
                vs_peer=p50 / peer if p50 is not None and peer else None,
            )
        )
    return rated


def runs(rated: Sequence[RatedRecord]) -> list[tuple[str, str, list[RatedRecord]]]:
    """(dataset, run_id, rows) groups: datasets by name, newest run first, rows in run order."""
    groups: dict[tuple[str, str], list[RatedRecord]] = {}
    for item in rated:
        groups.setdefault((item.record.dataset_name or "?", item.record.run_id or "?"), []).append(item)
    newest_first = sorted(
        groups, key=lambda key: max(item.record.timestamp or "" for item in groups[key]), reverse=True
    )
    order = sorted(newest_first, key=lambda key: key[0])  # stable: within a dataset, newest run first
    return [(dataset, run_id, groups[(dataset, run_id)]) for dataset, run_id in order]


COLUMNS = (
    "row",
    "engine",
    "plugins",
    "p50 ms",
    "p95 ms",
    "p50 ratio",
    "vs peer",
    "first call ms",
    "load s",
    "apply s",
    "RTF",
    "tokens/s",
    "stages ms",
    "peak RSS MB",
    "WER %",
    "CER %",
    "notes",
)


def render_markdown(records: Sequence[BenchRecord], winner: dict | None = None) -> str:
    """The whole README of one device folder."""
    if not records:
        return "# Benchmark results\n\nNo records yet: run `asrforge bench`.\n"
    device = records[-1].device
    lines = [
        f"# Benchmark results: {device.get('name', device.get('key', '?'))}",
        "",
        _device_line(device),
        "",
        "Rendered from `results.jsonl` by `asrforge bench` / `asrforge report`; do not edit by hand. "
        "Latency is per request (p50/p95 over every file of every timed pass); `p50 ratio` = row p50 / `baseline` "
        "p50 and `vs peer` = row p50 / the reference row's p50, both within the same run (< 1 is faster). "
        "WER/CER are corpus-level after Whisper's normaliser; `n/a` where the weights are random.",
    ]
    plotted: set[str] = set()
    for dataset, run_id, items in runs(rate(records)):
        first = items[0].record
        info = next((item.record.dataset for item in items if item.record.measured), first.dataset)
        lines += [
            "",
            f"## {dataset}: run `{run_id}`",
            "",
            f"{info.get('files', '?')} files, {_num(info.get('audio_s'), 1)} s of audio "
            f"(`{info.get('manifest', '')}`); commit `{first.commit}`, {first.timestamp}; "
            f"batch size {first.batch_size}, {first.passes} timed pass(es).",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join("---" if i < 3 or i == len(COLUMNS) - 1 else "---:" for i in range(len(COLUMNS))) + "|",
        ]
        lines += [_table_row(item, winner) for item in items]
        overheads = [_overhead(item.record) for item in items if _overhead(item.record) is not None]
        if overheads:
            lines += [
                "",
                f"Harness overhead per row (process start, imports, audio decoding): median "
                f"{statistics.median(overheads):.1f} s, max {max(overheads):.1f} s.",
            ]
        if dataset not in plotted:  # the plots show the newest run of each dataset
            plotted.add(dataset)
            slug = _file_slug(dataset)
            lines += ["", f"![p50 latency vs WER]({slug}_latency_vs_wer.png) ![p50 ratio]({slug}_p50_ratio.png)"]
    return "\n".join(lines) + "\n"


def _device_line(device: dict) -> str:
    parts = [f"CPU {device.get('cpu')} ({device.get('cpu_quota')} usable of {device.get('cpu_count')} cores)"]
    if device.get("type") == "cuda":
        parts.insert(
            0,
            f"GPU {device.get('name')} (compute {device.get('capability')}, {device.get('memory_gb')} GB, "
            f"driver {device.get('driver')}, CUDA {device.get('cuda_runtime')})",
        )
    parts.append(
        f"Python {device.get('python')}, torch {device.get('torch')}, transformers {device.get('transformers')}"
    )
    return "; ".join(parts) + "."


def _table_row(item: RatedRecord, winner: dict | None) -> str:
    r = item.record
    latency = r.latency_ms or {}
    cells = [
        f"**{r.row}**" if _is_winner(r, winner) else r.row,
        r.combination.get("engine_option") or r.combination.get("engine") or "",
        ", ".join(r.combination.get("plugins") or r.combination.get("requested_plugins") or []) or "—",
        _num(latency.get("p50"), 1),
        _num(latency.get("p95"), 1),
        _ratio(item.p50_ratio),
        _ratio(item.vs_peer),
        _num(r.first_call_ms, 1),
        _num(r.load_s, 2),
        _num(r.apply_s, 2),
        _num(r.rtf, 3),
        _num(r.tokens_per_s, 1),
        " / ".join(f"{name} {value:.0f}" for name, value in (r.stage_ms or {}).items()) or "—",
        _num(r.peak_mem_mb, 0) + (f" (GPU {r.cuda_peak_mem_mb:.0f})" if r.cuda_peak_mem_mb is not None else ""),
        _metric(r, r.wer),
        _metric(r, r.cer),
        _notes(r, winner),
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _notes(record: BenchRecord, winner: dict | None) -> str:
    notes = []
    if _is_winner(record, winner):
        notes.append("winner")
    if record.reference:
        notes.append("peer reference")
    if record.refused:
        notes.append(f"refused: {record.refused}")
    if record.error:
        notes.append(f"error: {record.error}")
    if record.weights:
        notes.append(f"weights: {record.weights}")
    elif record.random_weights:
        notes.append("random weights")
    if (record.foreign_cpu or 0.0) > BUSY_HOST:
        notes.append(f"busy host: other processes used {record.foreign_cpu:.0%} of the CPU while timing")
    return "; ".join(notes)


def _is_winner(record: BenchRecord, winner: dict | None) -> bool:
    return bool(winner) and winner.get("run_id") == record.run_id and winner.get("row") == record.row


def _metric(record: BenchRecord, value: float | None) -> str:
    if value is not None:
        return f"{value:.2f}"
    return "n/a" if record.random_weights else "—"


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _overhead(record: BenchRecord) -> float | None:
    overhead = record.overhead_s or {}
    if "startup" not in overhead:
        return None
    return overhead["startup"] + overhead.get("audio_decode", 0.0)


def _file_slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "-" for char in text)


def write_report(device_dir: str | os.PathLike) -> list[Path]:
    """Re-render ``README.md`` and the plots of one device folder from its ``results.jsonl``."""
    from asrforge.experiments.bench.plots import plot_run

    device_dir = Path(device_dir)
    records = read_records(device_dir / RESULTS)
    winner_file = device_dir.parent / WINNER
    winners = yaml.safe_load(winner_file.read_text()) if winner_file.is_file() else None
    winner = (winners or {}).get(device_dir.name)
    readme = device_dir / README
    readme.write_text(render_markdown(records, winner), encoding="utf-8")
    written = [readme]
    seen: set[str] = set()
    for dataset, _, items in runs(rate(records)):
        if dataset not in seen:  # the newest run of each dataset is the one plotted
            seen.add(dataset)
            written += plot_run(items, device_dir, _file_slug(dataset))
    return written


def render_all(root: str | os.PathLike = "reports") -> list[Path]:
    """Re-render every ``<root>/<device>/`` that has a ``results.jsonl``."""
    return [path for results in sorted(Path(root).glob(f"*/{RESULTS}")) for path in write_report(results.parent)]
