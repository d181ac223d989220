"""``reports/<gpu>/GPU.md``: the GPU matrix as one table per model, clip length and batch size, with the decoder's
ms/token against its weight-read floor, and the matrix's targets checked against the newest measurements.

Rendered from ``results.jsonl`` (rows of ``+bench=gpu`` runs: the records that carry a ``floor``, and refusals of
the same runs) and ``transfer_overlap.json``, by ``asrforge report`` with the device folder's other reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from asrforge.experiments import markdown as md
from asrforge.experiments.bench.records import RESULTS, BenchRecord, read_records

GPU_MD = "GPU.md"
OVERLAP = "transfer_overlap.json"
COLUMNS = ("row", "plugins", "p50 ms", "first call ms", "decoder ms/token", "floor ms/token", "floor ratio", "GPU MB")
# The GPU matrix's targets (the FP8 one is stated for an H100).
BF16_FLOOR_RATIO = 1.3
FP8_MS_PER_TOKEN = 0.65
CLIP_10S_P50_MS = 25.0


def gpu_runs(records: Sequence[BenchRecord]) -> list[BenchRecord]:
    """Records of the runs that measured the floor (refused rows of those runs included), newest run last."""
    runs = {record.run_id for record in records if record.floor is not None}
    return sorted((r for r in records if r.run_id in runs), key=lambda r: r.timestamp or "")


def render(records: Sequence[BenchRecord], overlap: dict | None = None) -> str:
    records = gpu_runs(records)
    if not records:
        return "# GPU matrix\n\nNo GPU-matrix records yet: run `asrforge bench +bench=gpu` on a GPU.\n"
    device = records[-1].device
    lines = [
        f"# GPU matrix: {device.get('name', device.get('key'))}",
        "",
        "Rendered by `asrforge report`; do not edit by hand. Random weights (WER n/a), "
        "decoded to a real transcript's length. `decoder ms/token` is the steady decode step (prefill excluded); "
        "the floor is the decoder's weight bytes over the device-to-device copy bandwidth measured in the same "
        "process; `floor ratio` = the two's quotient (1.0 = the memory-bandwidth limit). `first call ms` holds "
        "compilation and graph capture.",
        "",
        *_targets(records),
    ]
    groups: dict[tuple, dict[str, BenchRecord]] = {}
    for record in records:  # the newest run of each point replaces older ones
        key = (record.combination.get("engine_option"), record.dataset_name, record.batch_size)
        groups.setdefault(key, {})[record.row] = record
    for (engine, dataset, batch), rows in sorted(groups.items(), key=lambda item: tuple(map(str, item[0]))):
        first = next(iter(rows.values()))
        lines += ["", f"## {engine}, {dataset}, batch {batch}", "", f"Run `{first.run_id}`, {first.timestamp}.", ""]
        lines += md.header(COLUMNS, "ll" + "r" * (len(COLUMNS) - 2))
        lines += [_row(record) for record in rows.values()]
    if overlap:
        fractions = ", ".join(f"{name} {value:.0%}" for name, value in overlap.get("overlap_fraction", {}).items())
        lines += [
            "",
            "## Copy / compute overlap (profiler trace)",
            "",
            f"Share of HtoD copy time overlapping kernels "
            f"of another stream, copies issued while earlier kernels run: {fractions}.",
        ]
    return "\n".join(lines) + "\n"


def _row(record: BenchRecord) -> str:
    if record.refused or record.error:
        reason = f"refused: {record.refused}" if record.refused else f"error: {record.error}"
        return f"| {record.row} | {', '.join(record.combination.get('requested_plugins') or [])} | {reason} |" + (
            " |" * (len(COLUMNS) - 3)
        )
    floor = record.floor or {}
    cells = [
        record.row,
        ", ".join(record.combination.get("plugins") or []) or "—",
        md.num(record.p50, 1, missing="n/a"),
        md.num(record.first_call_ms, 0, missing="n/a"),
        md.num(record.decoder_ms_per_token, 3, missing="n/a"),
        md.num(floor.get("ms_per_token"), 3, missing="n/a"),
        md.num(record.floor_ratio, 2, missing="n/a"),
        md.num(record.cuda_peak_mem_mb, 0, missing="n/a"),
    ]
    return md.row(cells)


def _targets(records: Sequence[BenchRecord]) -> list[str]:
    """One line per target of the GPU matrix, from the best measured row of the newest runs (met, missed or not run)."""
    latest = {(r.combination.get("engine_option"), r.dataset_name, r.batch_size, r.row): r for r in records}
    measured = [r for r in latest.values() if r.measured and r.floor is not None]
    big = [r for r in measured if r.combination.get("engine_option") == "qwen3-asr-1.7b" and r.batch_size == 1]
    bf16 = [r.floor_ratio for r in big if "fp8" not in (r.combination.get("plugins") or []) and r.floor_ratio]
    fp8 = [r.decoder_ms_per_token for r in big if "fp8" in (r.combination.get("plugins") or [])]
    real_size = ("qwen3-asr-0.6b", "qwen3-asr-1.7b")
    clip = [
        r.p50 for r in measured if r.dataset_name == "clips-10s" and r.combination.get("engine_option") in real_size
    ]
    return [
        "Targets:",
        "",
        _target(
            f"1.7B decoder in bf16 <= {BF16_FLOOR_RATIO}x the floor", min(bf16, default=None), BF16_FLOOR_RATIO, "x"
        ),
        _target(f"1.7B decoder in FP8 <= {FP8_MS_PER_TOKEN} ms/token (H100)", min(fp8, default=None), FP8_MS_PER_TOKEN),
        _target(
            f"10-s clip end to end <= {CLIP_10S_P50_MS:g} ms (p50, 0.6B or 1.7B)",
            min(clip, default=None),
            CLIP_10S_P50_MS,
        ),
    ]


def _target(label: str, best: float | None, limit: float, unit: str = " ms") -> str:
    if best is None:
        return f"- {label}: not measured yet"
    return f"- {label}: {'met' if best <= limit else 'missed'}, best {best:.3g}{unit}"


def write_summary(device_dir: Path) -> Path:
    overlap_path = device_dir / OVERLAP
    overlap = json.loads(overlap_path.read_text(encoding="utf-8")) if overlap_path.is_file() else None
    path = device_dir / GPU_MD
    path.write_text(render(read_records(device_dir / RESULTS), overlap), encoding="utf-8")
    return path
