"""``streaming.md`` and ``streaming.png`` rendered from ``streaming.jsonl`` and ``streaming_summary.json`` (written by
experiments/streaming/run.py): per-chunk cost in the first and the last minute of the stream, its growth, its
ratio to re-feeding, the first partial, and each mode's final-transcript WER."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from asrforge.experiments import markdown as md  # noqa: E402
from asrforge.experiments.jsonl import read_jsonl  # noqa: E402

FLAT_GOAL = 1.2  # the study's goal: last-minute per-chunk cost within 1.2x of the first minute's


def read(out_dir: Path) -> tuple[list[dict], dict]:
    summary = json.loads((out_dir / "streaming_summary.json").read_text(encoding="utf-8"))
    return read_jsonl(out_dir / "streaming.jsonl"), summary


def minute_means(records: Sequence[dict], length_s: float) -> tuple[float, float]:
    """Mean per-chunk cost (ms) of the chunks ending in the first minute and of those ending in the last one."""
    first = [r["chunk_latency_ms"] for r in records if r["stream_pos_s"] <= 60]
    last = [r["chunk_latency_ms"] for r in records if r["stream_pos_s"] > length_s - 60]
    return statistics.fmean(first), statistics.fmean(last)


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<device>/streaming.md`` and its plot, from the records beside them."""
    written: list[Path] = []
    for summary in sorted(root.glob("*/streaming_summary.json")):
        render(summary.parent)
        written += [summary.parent / "streaming.md", summary.parent / "streaming.png"]
    return written


def render(out_dir: Path) -> None:
    records, summary = read(out_dir)
    modes = list(summary["modes"])
    by_mode = {mode: [r for r in records if r["mode"] == mode] for mode in modes}
    length = summary["stream"]["seconds"]
    means = {mode: minute_means(by_mode[mode], length) for mode in modes}
    first_chunk = {mode: by_mode[mode][0]["chunk_latency_ms"] for mode in modes}
    refeed = means.get("refeed")
    stream, device = summary["stream"], summary["device"]
    lines = [
        "# Streaming: per-chunk cost against stream position",
        "",
        "Rendered from `streaming.jsonl` (one record per chunk and mode) and `streaming_summary.json` by",
        "`asrforge run streaming`; do not edit by hand.",
        "",
        f"Stream: the first {stream['seconds']:.1f} s of `{stream['file']}` ({stream['utterances']} real utterances, "
        f"cut in the pause at {stream['cut_s']:.1f} s), fed in {stream['chunk_s']:g}-s chunks; "
        f"{stream['vad_pauses']} pauses from the streaming Silero VAD commit the window. "
        f"Device: {device.get('cpu', device['type'])}, {summary['torch_threads']} torch threads, shared with other "
        "jobs: compare ratios, not absolute times. The modes run in lock-step (each takes chunk i before any takes "
        f"chunk i + 1). Re-feeding is timed at every {summary['refeed_every']}-th chunk only (and the last), to bound "
        f"the run ({summary['wall_s'] / 60:.1f} min in all); its final is the offline transcript by construction.",
        "",
        "| mode | plugins | first-minute ms/chunk | last-minute ms/chunk | last / first | last minute / refeed "
        "| first chunk ms (/ refeed) | final WER vs offline % | final WER vs reference % |",
        md.rule("l" * 9),
    ]
    for mode in modes:
        first, last = means[mode]
        info = summary["modes"][mode]
        vs_refeed = f"{last / refeed[1]:.3f}" if refeed else "n/a"
        chunk0 = f"{first_chunk[mode]:.0f}"
        if "refeed" in first_chunk:
            chunk0 += f" ({first_chunk[mode] / first_chunk['refeed']:.2f})"
        lines.append(
            f"| {mode} | {', '.join(info['plugins'])} | {first:.0f} | {last:.0f} | {last / first:.2f}"
            f"{' (flat)' if last / first <= FLAT_GOAL else ''} | {vs_refeed} | {chunk0} "
            f"| {info['wer_vs_offline']:.2f} | {info['wer_vs_reference']:.2f} |"
        )
    lines += ["", "Offline (one long-form `transcribe` of the whole stream) WER against the reference:"]
    lines += [f"- {name}: {info['wer_vs_reference']:.2f} %" for name, info in summary["offline"].items()]
    lines += [
        "",
        "Reading the table: `last / first` is the study's flatness measure (goal <= 1.2); the first chunk is the",
        "compute time of the first partial (the audio wait before it is one chunk). `dual_model` chunks that hold a",
        "pause include the big model's final decode of the window (`commit_ms` in the records); its partials alone",
        "are `partial_ms`. `dev_concat_long.wav` repeats every utterance twice, so its WER is not an independent",
        "figure; WER against offline compares the streaming final with the same model's offline transcript.",
        "",
        "![per-chunk latency](streaming.png)",
        "",
    ]
    (out_dir / "streaming.md").write_text("\n".join(lines), encoding="utf-8")
    _plot(by_mode, out_dir / "streaming.png")


def _plot(by_mode: dict[str, list[dict]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    for mode, records in by_mode.items():
        style = "o-" if mode == "refeed" else "-"
        ax.plot([r["stream_pos_s"] for r in records], [r["chunk_latency_ms"] for r in records], style, label=mode, lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("stream position (s)")
    ax.set_ylabel("chunk latency (ms, log scale)")
    ax.set_title("per-chunk cost of a live stream")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
