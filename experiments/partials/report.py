"""``partials.md`` rendered from ``partials.jsonl`` (written by experiments/partials/run.py): per window margin, what
a realtime partial costs and how close its fixed text comes to the final."""

from __future__ import annotations

from pathlib import Path

from asrforge.experiments import markdown as md
from asrforge.experiments.jsonl import read_jsonl

COLUMNS = (
    "window margin",
    "steps",
    "ms a step (mean)",
    "ms a step (p50)",
    "steps to first fixed text",
    "audio at first fixed text (p50)",
    "fixed words",
    "differing from the final",
)


def render_all(root: Path) -> list[Path]:
    """Every ``<root>/<folder>/partials.md`` from the records beside it."""
    return [render(records.parent) for records in sorted(root.glob("*/partials.jsonl"))]


def render(out_dir: Path) -> Path:
    record = read_jsonl(out_dir / "partials.jsonl")[-1]
    served = record["served_margin_s"]
    cadence = record["cadence_ms"]
    combination = record["combination"]
    lines = [
        "# Realtime partials per window margin",
        "",
        "Rendered from the newest record of `partials.jsonl` by `asrforge run partials`; do not edit by hand.",
        "",
        f"Run {record['timestamp']} at commit `{record['commit']}` on {record['device']['name']} "
        f"({record['device'].get('cpu_quota', '?')} CPUs). Engine: {combination['engine'].get('model')} on "
        f"`{combination['engine'].get('_target_', '').rsplit('.', 1)[-1]}` with "
        f"{', '.join(combination['plugins']) or 'no plugins'} ({combination['origin']}), kv_reuse switched on as the "
        "server does. "
        f"Data: the `{record['dataset']}` set's tuning part, {len(record['files'])} files "
        f"({record['audio_s']:.0f} s), each one utterance stepped at the server's cadence (every "
        f"{cadence['first_buffer_ms']} ms of new audio until the first fixed text, every {cadence['buffer_ms']} ms "
        "after); no load, no VAD (experiments/partials/run.py says what is simulated).",
        "",
        "A *fixed* word is what a delta carries and never takes back; it *differs* where, aligned to the first words "
        "of the utterance's final (the served engine's greedy decode of the whole file, as the realtime `completed` "
        "event decodes an utterance), it needs an edit. The margin is the "
        "padding encoded after the audio, in whole seconds (Whisper's full window is 30 s); the server's is "
        f"`serving.realtime.window_margin_s` = {md.num(served, 1, missing='null')} s.",
        "",
        *md.header(COLUMNS, "lrrrrrrr"),
    ]
    for row in record["margins"]:
        margin = row["window_margin_s"]
        mark = " (served)" if margin == served else ""
        first = row["first_fixed_audio_s_p50"]
        lines.append(
            md.row(
                [
                    f"{md.num(margin, 1)} s{mark}",
                    row["steps"],
                    md.num(row["step_ms_mean"], 1),
                    md.num(row["step_ms_p50"], 1),
                    md.num(row["steps_to_first_fixed_mean"], 2),
                    f"{md.num(first, 2)} s",
                    row["fixed_words"],
                    f"{row['differing_words']} ({md.share(row['differing_words'] / max(row['fixed_words'], 1), 1)})",
                ]
            )
        )
    lines.append("")
    path = out_dir / "partials.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
