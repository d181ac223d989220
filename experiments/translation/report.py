"""``reports/<device>/translation.md`` rendered from ``translation.jsonl`` beside it (never edited by hand)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import render_beside

COMMAND = "asrforge run translation"


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<device>/translation.md`` from the records beside it."""
    return [write_markdown(records.parent) for records in sorted(root.glob("*/translation.jsonl"))]


def write_markdown(report_dir: str | os.PathLike) -> Path:
    return render_beside(Path(report_dir) / "translation.jsonl", render_markdown, "translation.md")


def _pct(value: float | None, unit: str = " %") -> str:
    return md.percent(value, 1, missing="n/a (OpenCC not installed)", unit=unit)


def render_markdown(records: Sequence[Mapping[str, Any]]) -> str:
    latest = records[-1]["timestamp"]
    run = [r for r in records if r["timestamp"] == latest]
    summary = next(r for r in run if r["kind"] == "zh_summary")
    trip = next(r for r in run if r["kind"] == "round_trip")
    combination, device = summary["combination"], summary["device"]
    lines = [
        "# Translation: Chinese speech, and English to Chinese and back",
        "",
        f"Rendered from `translation.jsonl` by `experiments/translation/report.py`; produced by `{COMMAND}`.",
        "",
        f"Latest run {latest}, commit `{summary.get('commit') or '?'}`, on {device.get('name')} "
        f"({device.get('cpu_quota') or device.get('cpu_count')} CPUs): {combination['engine']} "
        f"{combination['model']} with {', '.join(combination['plugins']) or 'no plugins'}.",
        "",
        "## Chinese speech (`eval/zh`): transcription CER and Whisper's English translation",
        "",
        f"Corpus CER over {summary['files']} clips ({summary['audio_s']:.1f} s), language `zh` given: "
        f"**{_pct(summary['cer'])}** as written, **{_pct(summary.get('cer_simplified'))}** with Traditional "
        "characters mapped to Simplified (OpenCC `t2s`: Whisper writes some clips in Traditional script, the "
        "references are Simplified). Whisper's basic normaliser, spaces removed; errors summed over clips. "
        f"Transcribing took {summary['transcribe_ms'] / 1000:.1f} s in all, translating "
        f"{summary['translate_ms'] / 1000:.1f} s. The English is Whisper's own translate task (one pass, speech to "
        "English, as `/v1/audio/translations` gives it); the clips have no reference English, so it is shown, "
        "not scored.",
        "",
        "| clip | s | reference | transcript | CER % (as written / Simplified) | English (Whisper translate) |",
        md.rule("llllll"),
    ]
    lines += [
        f"| {r['audio']} | {r['audio_s']:.1f} | {md.cell(r['reference'])} | {md.cell(r['transcript'])} "
        f"| {r['cer']:.1f} / {_pct(r.get('cer_simplified'), '')} "
        f"| {md.cell(r['translation_en'])} |"
        for r in run
        if r["kind"] == "zh_clip"
    ]
    lines += ["", "## English dev set to Chinese and back (a sanity figure)", ""]
    lines += _round_trip(trip)
    return "\n".join(lines) + "\n"


def _round_trip(trip: Mapping[str, Any]) -> list[str]:
    translator = trip.get("translator") or {}
    named = f"{translator.get('backend')} `{translator.get('model')}` at {translator.get('base_url')}"
    if trip["wer"] is None:
        where = f" (translator: {named})" if translator else ""
        return [f"WER: **{trip['not_measured']}**{where}. No figure is given rather than an invented one."]
    lines = [
        f"Translator: {named}. WER against the dev references over {trip['files']} files:",
        "",
        "| what went there and back | WER % |",
        "|---|---|",
        f"| the reference texts (the translator alone) | {trip['wer']:.2f} |",
        f"| Whisper's transcripts, no translation (for comparison) | {trip['wer_transcripts']:.2f} |",
        f"| Whisper's transcripts, there and back | {trip['wer_transcripts_round_trip']:.2f} |",
        "",
        "| reference | Chinese | back in English |",
        "|---|---|---|",
    ]
    lines += [
        f"| {md.cell(e['reference'])} | {md.cell(e['chinese'])} | {md.cell(e['back'])} |" for e in trip["examples"]
    ]
    return lines
