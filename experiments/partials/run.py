"""Realtime partials at the server's cadence, per encoder-window margin: cost per step, steps and audio before the
first delta, and how far the fixed text (what deltas carry, never taken back) is from the utterance's final.

``asrforge run partials`` appends one record to ``reports/serving/partials.jsonl`` and renders ``partials.md``.

What it simulates, and what not: each file of the dataset's *tuning* part (the margin is a choice, so it reads no
test file) is one utterance, stepped as serving/realtime.py steps it: every ``first_buffer_ms`` of new audio until
the stream session has fixed text, every ``buffer_ms`` after; the engine is the served one (the benchmark winner,
else the embedded default) with kv_reuse as the server switches it on (serving/stream_engine.py). No scheduler, no
VAD (a file is one utterance), no load: the step cost is the engine's alone. Margins are run file by file in turn,
so a burst of load from other processes lands on all of them alike. The final is the served engine's decode of the
whole file with default options (greedy), as the server's realtime ``completed`` event decodes an utterance
(serving/realtime.py); a fixed word "differs" where the fixed words,
aligned (jiwer) to the final's first words (the prefix length within 3 words that aligns best), need an edit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import jiwer
import numpy as np

from asrforge.audio import load_audio
from asrforge.config import tuning_files
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import device_info, versions
from asrforge.experiments.jsonl import append_jsonl
from asrforge.experiments.partials.report import render
from asrforge.experiments.scoring import normalize
from asrforge.paths import REPO_ROOT, eval_data_dir
from asrforge.serving.settings import RealtimeSettings
from asrforge.serving.stream_engine import streaming_engine
from asrforge.winner import resolve_combination

MARGINS = (5.0, 3.0, 2.0, 1.0)
ALIGN_SLACK = 3  # final-prefix lengths tried around the fixed text's length


def step_utterance(engine: BaseEngine, audio: np.ndarray, first_ms: int, gap_ms: int) -> dict:
    """One utterance stepped at the server's cadence: each step's seconds, the audio heard at the first fixed text,
    and the fixed text at the end."""
    session = engine.stream_session(finals=False)
    first, gap = first_ms * SAMPLE_RATE // 1000, gap_ms * SAMPLE_RATE // 1000
    position, seconds, first_fixed_s, steps_to_first, stable = 0, [], None, None, ""
    while (end := position + (first if first_fixed_s is None else gap)) <= len(audio):
        started = time.perf_counter()
        update = session.feed(audio[position:end])
        seconds.append(time.perf_counter() - started)
        position, stable = end, update.stable
        if first_fixed_s is None and stable.strip():
            first_fixed_s, steps_to_first = end / SAMPLE_RATE, len(seconds)
    return {"step_s": seconds, "first_fixed_s": first_fixed_s, "steps_to_first": steps_to_first, "fixed": stable}


def differing_words(fixed: str, final: str) -> tuple[int, int]:
    """(fixed words, edits they need against the best-aligned prefix of the final), both normalised."""
    words, reference = normalize(fixed, "en").split(), normalize(final, "en").split()
    if not words:
        return 0, 0
    lengths = range(max(1, len(words) - ALIGN_SLACK), len(words) + ALIGN_SLACK + 1)
    edits = []
    for length in lengths:
        prefix = " ".join(reference[:length])
        if not prefix:
            edits.append(len(words))
            continue
        out = jiwer.process_words(prefix, " ".join(words))
        edits.append(out.substitutions + out.deletions + out.insertions)
    return len(words), min(edits)


def run(margins: Sequence[float], dataset: str, settings: RealtimeSettings, out: Path) -> dict:
    combination, origin = resolve_combination()
    served = combination.load()
    tune = sorted(tuning_files(dataset) or ())
    if not tune:
        raise SystemExit(f"dataset {dataset!r} has no tuning part (split.tune); the margin is a choice: no test file")
    folder = eval_data_dir() / dataset
    audios = {name: load_audio(folder / name) for name in tune}
    finals = {name: served.transcribe([audio])[0].text for name, audio in audios.items()}
    engines = {margin: streaming_engine(served, True, margin) for margin in margins}
    for engine in engines.values():  # warm: oneDNN's per-shape setup is not a step's cost
        step_utterance(engine, audios[tune[0]], settings.first_buffer_ms, settings.buffer_ms)
    results: dict[float, list[dict]] = {margin: [] for margin in margins}
    for name, audio in audios.items():
        for margin, engine in engines.items():
            stepped = step_utterance(engine, audio, settings.first_buffer_ms, settings.buffer_ms)
            stepped["fixed_words"], stepped["differing_words"] = differing_words(stepped["fixed"], finals[name])
            results[margin].append(stepped)
    rows = []
    for margin, files in results.items():
        steps = [s for f in files for s in f["step_s"]]
        firsts = [f["first_fixed_s"] for f in files if f["first_fixed_s"] is not None]
        fixed = sum(f["fixed_words"] for f in files)
        rows.append(
            {
                "window_margin_s": margin,
                "steps": len(steps),
                "step_ms_mean": 1000 * statistics.fmean(steps),
                "step_ms_p50": 1000 * statistics.median(steps),
                "steps_to_first_fixed_mean": statistics.fmean(f["steps_to_first"] or len(f["step_s"]) for f in files),
                "first_fixed_audio_s_p50": statistics.median(firsts) if firsts else None,
                "files_without_fixed_text": len(files) - len(firsts),
                "fixed_words": fixed,
                "differing_words": sum(f["differing_words"] for f in files),
            }
        )
    record = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "device": device_info(served.device),
        "versions": versions(),
        "combination": {"engine": combination.engine, "plugins": combination.plugins, "origin": origin},
        "dataset": dataset,
        "files": tune,
        "audio_s": sum(len(a) for a in audios.values()) / SAMPLE_RATE,
        "cadence_ms": {"first_buffer_ms": settings.first_buffer_ms, "buffer_ms": settings.buffer_ms},
        "served_margin_s": settings.window_margin_s,
        "margins": rows,
    }
    append_jsonl(out / "partials.jsonl", [record])
    render(out)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge run partials", description=__doc__.split("\n\n")[0])
    parser.add_argument("--margins", default=",".join(f"{m:g}" for m in MARGINS), help="seconds, comma-separated")
    parser.add_argument("--dataset", default="dev", help="a conf/dataset option with a tuning part (default dev)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "serving")
    args = parser.parse_args(argv)
    margins = [float(m) for m in args.margins.split(",") if m.strip()]
    record = run(margins, args.dataset, RealtimeSettings(), args.out)
    print(args.out / "partials.md", len(record["margins"]), "margins")
    return 0
