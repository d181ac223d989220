"""``reports/<device>/subtitles.md`` rendered from ``subtitles.jsonl`` beside it (never edited by hand)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import render_beside

# The study's goals: mean boundary error (ms) and, for fast mode, an overhead ratio to stay under.
GOALS: dict[str, tuple[float, float | None]] = {"accurate": (100.0, None), "fast": (300.0, 1.05)}
COMMAND = "asrforge run subtitles"


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<device>/subtitles.md`` from the records beside it."""
    return [write_markdown(records.parent) for records in sorted(root.glob("*/subtitles.jsonl"))]


def write_markdown(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / "subtitles.jsonl", render_markdown, "subtitles.md")


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    latest = records[-1]["timestamp"]
    run = [r for r in records if r["timestamp"] == latest]
    long = [r for r in run if r["kind"] == "long"]
    short = [r for r in run if r["kind"] == "short"]
    first = run[0]
    device = first["device"]
    combination = first["combination"]
    out = [
        "# Subtitle timing: fast vs accurate",
        "",
        f"Rendered from `subtitles.jsonl` by `experiments/subtitles/report.py`; produced by `{COMMAND}`.",
        "",
        f"Latest run {latest}, commit `{first.get('commit') or '?'}`, on {device.get('name')} "
        f"({device.get('cpu_quota') or device.get('cpu_count')} CPUs, {first.get('threads')} torch thread(s)): "
        f"{combination['engine']} {combination['model']} with {', '.join(combination['plugins']) or 'no plugins'} "
        f"({first.get('origin')}).",
        "",
    ]
    if long:
        out += _long_section(long)
    if short:
        out += _short_section(short)
    out += ["## Goals", ""] + [_verdict(mode, long, short) for mode in GOALS] + [""]
    out += _history(records)
    return "\n".join(out) + "\n"


def _ms(value: float | None) -> str:
    return md.num(value, 0, missing="n/a")


def _long_section(long: Sequence[Mapping[str, Any]]) -> list[str]:
    rec = long[0]
    trials = len(rec["latency_s"]["trials"])
    lines = [
        f"## Boundary error on `{rec['file']}` ({rec['audio_s']:.0f} s, {rec['utterances']} utterances, "
        f"{rec['chunks']} chunks)",
        "",
        "Each utterance's start is scored by the start of the cue showing its first word, its end by the end of "
        "the cue showing its last word (cues read back with the `srt` parser; words matched to utterances by "
        "aligning the recognised words with the reference). *vs speech*: against the first and last voiced 10-ms "
        "frame of each utterance; *vs manifest*: against the manifest's start/end, where each source clip was "
        "placed, which includes the clip's own leading and trailing silence, so even perfect timing scores above "
        "zero there. Errors are absolute, in ms.",
        "",
        "| mode | method | cues | vs speech: mean | median | start mean / median | end mean / median "
        "| vs manifest: mean | median | start mean / median | end mean / median |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in long:
        speech, manifest = r["error_vs_speech"], r["error_vs_manifest"]
        method = (r.get("alignment") or {}).get("method", "decoder segments as cues")
        lines.append(
            f"| {r['mode']} | {method} | {r['cues']} | {_ms(speech['mean_ms'])} | {_ms(speech['median_ms'])} "
            f"| {_ms(speech['start_mean_ms'])} / {_ms(speech['start_median_ms'])} "
            f"| {_ms(speech['end_mean_ms'])} / {_ms(speech['end_median_ms'])} "
            f"| {_ms(manifest['mean_ms'])} | {_ms(manifest['median_ms'])} "
            f"| {_ms(manifest['start_mean_ms'])} / {_ms(manifest['start_median_ms'])} "
            f"| {_ms(manifest['end_mean_ms'])} / {_ms(manifest['end_median_ms'])} |"
        )
    missed = {r["mode"]: r["error_vs_speech"]["utterances_missed"] for r in long}
    lines += [
        "",
        f"Utterances with no recognised word (not scored): {', '.join(f'{m} {n}' for m, n in missed.items())}.",
        "",
        "| mode | latency (median s) | overhead vs none | after the decode (s) | trials (s) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['latency_s']['median']:.2f} | {r['overhead_ratio']:.3f}x | {r['after_decode_s']:.3f} "
        f"| {', '.join(f'{s:.2f}' for s in r['latency_s']['trials'])} |"
        for r in long
    ]
    lines += [
        "",
        f"Latency is the whole file, decode through SRT, median of {trials} trials interleaved in rotating order; "
        "*after the decode* is the part spent timing words and laying out cues. The shared VAD pass "
        f"({rec['vad_s']:.2f} s) is outside it: chunking needs it in every mode.",
        "",
    ]
    return lines


def _short_section(short: Sequence[Mapping[str, Any]]) -> list[str]:
    rec = short[0]
    lines = [
        f"## Latency on short clips ({rec['files']} dev clips, {rec['audio_s']:.0f} s, one after another)",
        "",
        "One chunk per clip, so timing needs a VAD pass of its own; as in the server it runs in a worker thread "
        "beside the decode (on this machine's cores it competes with the decode for CPU).",
        "",
        "| mode | latency (median s) | overhead vs none | VAD alone per clip (s) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['latency_s']['median']:.2f} | {r['overhead_ratio']:.3f}x | {r['vad_s_per_clip']:.3f} |"
        for r in short
    ]
    return [*lines, ""]


def _added_work(mode: str, long: Sequence[Mapping], short: Sequence[Mapping]) -> list[float]:
    """Overhead as the work a mode adds to the untimed decode, measured directly: the timing step after the decode
    (long file) and the VAD pass, as if in series (short clips, an upper bound). Only meaningful for ``fast``,
    whose decode is the untimed one; end-to-end ratios of a few trials on a shared machine are noisier than that."""
    base_long = next(r for r in long if r["mode"] == "none")["latency_s"]["median"]
    row = next(r for r in long if r["mode"] == mode)
    ratios = [1 + row["after_decode_s"] / base_long]
    for r in short:
        if r["mode"] == mode:
            base_short = next(b for b in short if b["mode"] == "none")["latency_s"]["median"]
            ratios.append(1 + r["vad_s_per_clip"] * r["files"] / base_short)
    return ratios


def _verdict(mode: str, long: Sequence[Mapping], short: Sequence[Mapping]) -> str:
    error_goal, overhead_goal = GOALS[mode]
    row = next((r for r in long if r["mode"] == mode), None)
    if row is None:
        return f"- **{mode}**: not measured in this run"
    speech, manifest = row["error_vs_speech"]["mean_ms"], row["error_vs_manifest"]["mean_ms"]

    def met(value: float | None) -> str:
        return "n/a" if value is None else ("met" if value <= error_goal else "missed")

    parts = [
        f"mean boundary error {_ms(speech)} ms vs speech ({met(speech)}), {_ms(manifest)} ms vs manifest "
        f"({met(manifest)}); goal <= {error_goal:.0f} ms"
    ]
    overheads = [row["overhead_ratio"]] + [r["overhead_ratio"] for r in short if r["mode"] == mode]
    shown = f"{overheads[0]:.3f}x on the long file" + (f", {overheads[1]:.3f}x on short clips" if short else "")
    if overhead_goal is None:
        parts.append(f"overhead end to end {shown}")
    else:
        added = _added_work(mode, long, short)
        verdict = "met" if max(added) < overhead_goal else "missed"
        parts.append(
            f"overhead end to end {shown} (trial spread above: noise larger than the effect); work added to the same "
            f"decode {' and '.join(f'{a:.3f}x' for a in added)} ({verdict}; goal < {(overhead_goal - 1) * 100:.0f} %)"
        )
    return f"- **{mode}**: " + "; ".join(parts)


def _history(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "## All runs",
        "",
        "| run | commit | engine | mode | error vs speech mean (ms) | vs manifest (ms) | overhead (long) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["kind"] == "long":
            lines.append(
                f"| {r['timestamp']} | `{(r.get('commit') or '?')[:12]}` | {r['combination']['model']} | {r['mode']} "
                f"| {_ms(r['error_vs_speech']['mean_ms'])} | {_ms(r['error_vs_manifest']['mean_ms'])} "
                f"| {r['overhead_ratio']:.3f}x |"
            )
    return lines
