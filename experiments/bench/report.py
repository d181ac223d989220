"""``reports/<device>/README.md``: the records of ``results.jsonl`` as markdown tables (one per dataset and run),
with each row's speed as a ratio to the baseline and to the peer row of the same run *and the same decoding policy*,
and its WER on the test part with a 95 % bootstrap interval (experiments/bench/parts.py). Rendered, never hand-edited.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from pathlib import Path

import yaml

from asrforge.experiments import markdown as md
from asrforge.experiments.bench import head_to_head
from asrforge.experiments.bench.gpu_summary import gpu_runs, write_summary
from asrforge.experiments.bench.parts import difference_to, has_split, part_rate
from asrforge.experiments.bench.plots import plot_run
from asrforge.experiments.bench.rating import RatedRecord, rate, runs
from asrforge.experiments.bench.records import RESULTS, BenchRecord, read_records
from asrforge.experiments.jsonl import read_jsonl

BUSY_HOST = 0.1  # foreign CPU share above which a row's latency is flagged as disturbed
README = "README.md"
WINNER = "winner.yaml"


COLUMNS = (
    "row",
    "engine",
    "plugins",
    "decode",
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
    "test WER % [95 % CI]",
    "tune Δ vs baseline [95 % CI]",
    "WER % (all)",
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
        "WER/CER are corpus-level after Whisper's normaliser; `n/a` where the weights are random. "
        "`decode` is the decoding policy (`conf/decode/`): `fallback` = faster-whisper's default (beam 5, temperature "
        "fallback 0-1 step 0.2, thresholds 2.4 / -1.0 / 0.6, previous-text conditioning), `greedy`, `beam5`; "
        "both ratios compare rows of the same policy only (`<row>@<policy>` rows are re-runs at another policy). "
        "Where the dataset has a split (`split.tune` in `conf/dataset/`), the winner is chosen on the *tuning* part "
        "alone: fastest tuning-part p50 whose paired-bootstrap 95 % interval of the WER difference to the baseline "
        "(`tune Δ`) lies below `bench.wer_tolerance_points` (until 2026-12-05: includes 0 or lies below it); "
        "`test WER` is the *test* part, which no choice reads, with a 95 % "
        "bootstrap interval over files.",
    ]
    plotted: set[str] = set()
    for dataset, run_id, items in runs(rate(records)):
        first = items[0].record
        info = next((item.record.dataset for item in items if item.record.measured), first.dataset)
        lines += [
            "",
            f"## {dataset}: run `{run_id}`",
            "",
            f"{info.get('files', '?')} files, {md.num(info.get('audio_s'), 1, thousands=True)} s of audio "
            f"(`{info.get('manifest', '')}`); commit `{first.commit}`, {first.timestamp}; "
            f"batch size {first.batch_size}, {first.passes} timed pass(es).",
            "",
            *md.header(COLUMNS, "llll" + "r" * (len(COLUMNS) - 5) + "l"),
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
        r.policy or "—",
        md.num(latency.get("p50"), 1, thousands=True),
        md.num(latency.get("p95"), 1, thousands=True),
        md.ratio(item.p50_ratio),
        md.ratio(item.vs_peer),
        md.num(r.first_call_ms, 1, thousands=True),
        md.num(r.load_s, 2, thousands=True),
        md.num(r.apply_s, 2, thousands=True),
        md.num(r.rtf, 3, thousands=True),
        md.num(r.tokens_per_s, 1, thousands=True),
        " / ".join(f"{name} {value:.0f}" for name, value in (r.stage_ms or {}).items()) or "—",
        md.num(r.peak_mem_mb, 0, thousands=True)
        + (f" (GPU {r.cuda_peak_mem_mb:.0f})" if r.cuda_peak_mem_mb is not None else ""),
        _interval(part_rate(r, "test")) if has_split(r) else _metric(r, None),
        _difference(r, item.baseline),
        _metric(r, r.wer),
        _metric(r, r.cer),
        _notes(r, winner),
    ]
    return md.row(md.cell(cell) for cell in cells)


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


def _interval(interval) -> str:
    return md.MISSING if interval is None else f"{interval.value:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def _difference(record: BenchRecord, baseline: BenchRecord | None) -> str:
    if baseline is None or baseline is record or not has_split(record):
        return "—"
    d = difference_to(record, baseline, "tune")
    return "—" if d is None else f"{d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}]"


def _overhead(record: BenchRecord) -> float | None:
    overhead = record.overhead_s or {}
    if "startup" not in overhead:
        return None
    return overhead["startup"] + overhead.get("audio_decode", 0.0)


def _file_slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "-" for char in text)


def write_report(device_dir: str | os.PathLike) -> list[Path]:
    """Re-render ``README.md`` and the plots of one device folder from its ``results.jsonl``."""
    device_dir = Path(device_dir)
    records = read_records(device_dir / RESULTS)
    winner_file = device_dir.parent / WINNER
    winners = yaml.safe_load(winner_file.read_text()) if winner_file.is_file() else None
    winner = (winners or {}).get(device_dir.name)
    readme = device_dir / README
    markdown = render_markdown(records, winner)
    duels = read_jsonl(device_dir / head_to_head.HEAD_TO_HEAD, missing_ok=True)
    if duels:
        markdown += "\n".join(head_to_head.render(duels)) + "\n"
    readme.write_text(markdown, encoding="utf-8")
    written = [readme]
    seen: set[str] = set()
    for dataset, _, items in runs(rate(records)):
        if dataset not in seen:  # the newest run of each dataset is the one plotted
            seen.add(dataset)
            written += plot_run(items, device_dir, _file_slug(dataset))
    if gpu_runs(records):
        written.append(write_summary(device_dir))
    return written


def render_all(root: str | os.PathLike = "reports") -> list[Path]:
    """Re-render every ``<root>/<device>/`` that has a ``results.jsonl``."""
    return [path for results in sorted(Path(root).glob(f"*/{RESULTS}")) for path in write_report(results.parent)]
