"""``reports/<device>/diarization.md`` rendered from ``diarization.jsonl`` beside it (never edited by hand)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments.jsonl import render_beside

COMMAND = "asrforge run diarization"
GOALS = {"der": 0.10, "overhead_ratio": 1.3}


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<device>/diarization.md`` from the records beside it."""
    return [write_markdown(records.parent) for records in sorted(Path(root).glob("*/diarization.jsonl"))]


def write_markdown(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / "diarization.jsonl", render_markdown, "diarization.md")


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    latest = records[-1]["timestamp"]
    run = [r for r in records if r["timestamp"] == latest]
    long = next(r for r in run if r["kind"] == "long")
    calibration = next((r for r in reversed(records) if r["kind"] == "calibration"), None)
    device, combination = long["device"], long["combination"]
    timing = long["word_timing"]["fast"]
    out = [
        "# Speaker diarization: DER, speaker count, cost",
        "",
        f"Rendered from `diarization.jsonl` by `experiments/diarization/report.py`; produced by `{COMMAND}` "
        "(`make diarization-report`).",
        "",
        f"Latest run {latest}, commit `{long.get('commit') or '?'}`, on {device.get('name')} "
        f"({device.get('cpu_quota') or device.get('cpu_count')} CPUs, {long.get('threads')} torch thread(s)): "
        f"{combination['engine']} {combination['model']} with {', '.join(combination['plugins']) or 'no plugins'} "
        f"({long.get('origin')}); speaker embeddings: resemblyzer's GE2E encoder on speech pieces of up to 3.2 s "
        f"(the mean over 1.6-s windows {long.get('window_step_s', 1.6)} s apart); "
        f"agglomerative clustering at cosine distance {long['threshold']} over pieces of at least "
        f"{long['min_cluster_s']} s (shorter ones join the nearest speaker); words timed by `{timing.get('method')}` "
        "(the default) or by the decoder's word timestamps (`accurate`).",
        "",
    ]
    out += _long_section(long)
    if calibration:
        out += _calibration_section(calibration, long["threshold"], long.get("window_step_s", 1.6))
    out += _goals(long)
    out += _history(records)
    return "\n".join(out) + "\n"


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _long_section(rec: Mapping[str, Any]) -> list[str]:
    trials = len(rec["latency_s"]["plain"]["trials"])
    lines = [
        f"## `{rec['file']}` ({rec['audio_s']:.0f} s, {rec['utterances']} utterances, "
        f"{rec['speakers_reference']} reference speakers)",
        "",
        "Reference: each utterance's manifest start/end, its speaker named by its source dev file. DER by "
        f"pyannote.metrics, collar {rec['turns_der']['collar_s']} s, over the whole file.",
        "",
        "| hypothesis | DER | missed s | false alarm s | confusion s | speakers found |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("speaker turns", rec["turns_der"], rec["turns"])]
    rows += [(f"transcript segments, {m} word timing", rec["segments_der"][m], n) for m, n in rec["segments"].items()]
    for name, d, count in rows:
        lines.append(
            f"| {name} ({count}) | {_pct(d['der'])} | {d['missed_s']:.1f} | {d['false_alarm_s']:.1f} | "
            f"{d['confusion_s']:.1f} | {rec['speakers_found']} of {rec['speakers_reference']} |"
        )
    lines += [
        "",
        f"Cost, median of {trials} interleaved trials (rotated order), as a ratio to the plain decode of the same run:",
        "",
        "| mode | median s | ratio | stages (median s) |",
        "|---|---|---|---|",
    ]
    for mode, latency in rec["latency_s"].items():
        ratio = rec["overhead_ratio"].get(mode, 1.0)
        stages = ", ".join(f"{k[:-2].replace('_', ' ')} {v:.2f}" for k, v in rec["stages_s"][mode].items())
        lines.append(f"| {mode} | {latency['median']:.2f} | {ratio:.2f}x | {stages} |")
    return lines + [""]


def _calibration_section(rec: Mapping[str, Any], used: float, used_step: float) -> list[str]:
    chosen_step = rec.get("chosen_step_s", 1.6)
    lines = [
        "## Calibration of the threshold and the window step (eval/multi + eval/zh, never scored above)",
        "",
        f"{len(rec['clips'])} clips of {rec['speakers']} speakers, each cut in two halves, shuffled "
        f"({rec['recording_s']:.0f} s). Chosen: threshold {rec['chosen']}, windows {chosen_step} s apart (in use: "
        f"{used}, {used_step} s): the lowest DER, then the middle of its plateau (experiments/diarization/"
        "calibration.py). Consecutive thresholds with the same outcome are shown as one range.",
    ]
    if rec.get("speakers_clusterable", rec["speakers"]) < rec["speakers"]:
        lines[-1] += (
            f" Only {rec['speakers_clusterable']} of the {rec['speakers']} speakers speak for most of a piece of "
            f"at least {rec.get('min_cluster_s', 1.6)} s; the others' shorter pieces join the nearest speaker, so no "
            f"threshold can find more than {rec['speakers_clusterable']} without splitting someone."
        )
    lines += [
        "",
        "| window step s | thresholds | speakers found | DER | confusion s |",
        "|---|---|---|---|---|",
    ]
    for step, first, last, r in _plateaus(rec["rows"]):
        chosen = step == chosen_step and first <= rec["chosen"] <= last
        span = f"{first}" if first == last else f"{first} - {last}"
        mark = "**" if chosen else ""
        lines.append(f"| {step} | {mark}{span}{mark} | {r['speakers']} | {_pct(r['der'])} | {r['confusion_s']:.1f} |")
    return lines + [""]


def _plateaus(rows: Sequence[Mapping[str, Any]]) -> list[tuple[float, float, float, Mapping[str, Any]]]:
    """(step, first threshold, last threshold, row) for each run of consecutive rows with the same outcome."""
    runs: list[tuple[float, float, float, Mapping[str, Any]]] = []
    for r in rows:
        step = r.get("step_s", 1.6)
        outcome = (step, r["speakers"], r["der"], r["confusion_s"])
        if runs and (runs[-1][0], runs[-1][3]["speakers"], runs[-1][3]["der"], runs[-1][3]["confusion_s"]) == outcome:
            runs[-1] = (step, runs[-1][1], r["threshold"], runs[-1][3])
        else:
            runs.append((step, r["threshold"], r["threshold"], r))
    return runs


def _goals(rec: Mapping[str, Any]) -> list[str]:
    der = rec["turns_der"]["der"]
    ratio = rec["overhead_ratio"]["fast"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    return [
        "## Goals",
        "",
        f"- DER <= {_pct(GOALS['der'])}: {_pct(der)} (turns), {_pct(rec['segments_der']['fast']['der'])} (segments, "
        f"fast timing): {verdict(der <= GOALS['der'])}",
        f"- speakers counted right: {rec['speakers_found']} of {rec['speakers_reference']}: "
        f"{verdict(rec['speakers_right'])}",
        f"- overhead <= {GOALS['overhead_ratio']}x the plain decode: {ratio:.2f}x with fast word timing (the "
        f"default), {rec['overhead_ratio']['accurate']:.2f}x with accurate: "
        f"{verdict(ratio <= GOALS['overhead_ratio'])}",
        "",
    ]


def _history(records: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [r for r in records if r["kind"] == "long"]
    lines = ["## History", "", "| timestamp | commit | DER (turns) | speakers | overhead |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['timestamp']} | `{r.get('commit') or '?'}` | {_pct(r['turns_der']['der'])} | "
        f"{r['speakers_found']}/{r['speakers_reference']} | {r['overhead_ratio']['fast']:.2f}x |"
        for r in rows
    ]
    return lines
