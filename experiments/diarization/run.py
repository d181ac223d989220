"""Diarization study: ``asrforge run diarization`` (or ``make diarization-report``).

Decodes ``eval/long/dev_concat_once.wav`` (27 real utterances of 6 speakers, each utterance's speaker named by its
source dev file in the manifest) as ``asrforge transcribe`` does, interleaved over ``--repeats`` trials in three modes:

- ``plain``: one Silero pass, chunks cut at pauses, decoded and stitched: the undiarized transcript;
- ``fast``: the same, plus words timed over the VAD speech (the default), speaker embeddings, clustering and the
  segments split at speaker changes (asrforge/diarization);
- ``accurate``: the same with words timed by the decoder (word timestamps, cross-attention DTW).

Scores DER (pyannote.metrics, 0.25-s collar) of the speaker turns and of the transcript's speaker segments against
the manifest, the speaker count, and the cost as the ratio of the two modes' median wall times. The clustering
threshold and the embedding windows' step are calibrated first on eval/multi + eval/zh (calibration.py), which this
recording does not contain.
Records go to ``reports/<device>/diarization.jsonl``; ``diarization.md`` is rendered from them (report.py).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import numpy as np
import torch

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.diarization import DiarizationOptions, Turn
from asrforge.diarization.clustering import DEFAULT_THRESHOLD
from asrforge.diarization.files import FileDiarizer
from asrforge.engines.base import DecodeOptions
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import add_engine_arguments, device_info, load_study_engine
from asrforge.experiments.diarization.calibration import calibrate
from asrforge.experiments.diarization.reference import hypothesis_annotation, reference_annotation, to_rttm
from asrforge.experiments.diarization.report import write_markdown
from asrforge.experiments.diarization.scoring import der
from asrforge.experiments.jsonl import append_jsonl, read_jsonl
from asrforge.paths import REPO_ROOT, eval_data_dir
from asrforge.subtitles.options import load_subtitle_options
from asrforge.transcript import Transcript

MODES = ("plain", "fast", "accurate")


def one_pass(diarizer: FileDiarizer, audio: np.ndarray, mode: str) -> tuple[Transcript, object, dict[str, float]]:
    """One decode of ``audio`` by ``diarizer`` (``mode`` plain: without its diarization): (transcript, diarization or
    None, stage seconds)."""
    stages: dict[str, float] = {}
    transcript, found = diarizer.run(audio, stages=stages, speakers=mode != "plain")
    return transcript, found, stages


def run_long(diarizers: dict[str, FileDiarizer], path: Path, record: dict, repeats: int) -> dict:
    audio = load_audio(path)
    for mode in MODES:  # warm-up: first calls pay one-off costs
        one_pass(diarizers[mode], audio[: 20 * SAMPLE_RATE], mode)
    seconds: dict[str, list[float]] = {m: [] for m in MODES}
    stages: dict[str, list[dict]] = {m: [] for m in MODES}
    results: dict[str, tuple] = {}
    for trial in range(repeats):
        for mode in MODES[trial % 3 :] + MODES[: trial % 3]:  # rotate which mode goes first
            started = time.perf_counter()
            transcript, found, stage = one_pass(diarizers[mode], audio, mode)
            seconds[mode].append(time.perf_counter() - started)
            stages[mode].append(stage)
            results[mode] = transcript, found
    found = results["fast"][1]
    duration_s = audio.size / SAMPLE_RATE
    reference = reference_annotation(record["utterances"])
    segments_der, segment_counts = {}, {}
    for mode in ("fast", "accurate"):
        segments = [s for s in results[mode][0].segments if s.speaker]
        by_segment = hypothesis_annotation(Turn(s.start, s.end, s.speaker) for s in segments)
        segments_der[mode], segment_counts[mode] = der(reference, by_segment, duration_s), len(segments)
    plain = median(seconds["plain"])
    return {
        "file": path.name,
        "audio_s": round(duration_s, 3),
        "utterances": len(record["utterances"]),
        "speakers_reference": len(reference.labels()),
        "speakers_found": len(found.speakers),
        "speakers_right": len(found.speakers) == len(reference.labels()),
        "turns": len(found.turns),
        "segments": segment_counts,
        "turns_der": der(reference, hypothesis_annotation(found.turns), duration_s),
        "segments_der": segments_der,
        "latency_s": {
            m: {"median": round(median(v), 3), "trials": [round(x, 3) for x in v]} for m, v in seconds.items()
        },
        "stages_s": {m: {k: round(median(s[k] for s in v), 3) for k in v[0]} for m, v in stages.items()},
        "overhead_ratio": {m: round(median(seconds[m]) / plain, 3) for m in ("fast", "accurate")},
        "hypothesis_rttm": to_rttm(hypothesis_annotation(found.turns), path.stem),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge run diarization", description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="dev_concat_once.wav", help="a file of eval/long (its manifest has speakers)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved trials per mode")
    add_engine_arguments(parser)
    parser.add_argument("--skip-calibration", action="store_true", help="do not re-run the threshold/step calibration")
    parser.add_argument("--out", type=Path, help="report folder (default: reports/<device>)")
    args = parser.parse_args(argv)
    engine, origin = load_study_engine(args)
    subtitles = load_subtitle_options()
    diarizers = {
        mode: FileDiarizer(engine, DecodeOptions(), subtitles, DiarizationOptions(word_timing=timing))
        for mode, timing in (("plain", "fast"), ("fast", "fast"), ("accurate", "accurate"))
    }
    folder = eval_data_dir() / "long"
    record = next(r for r in read_jsonl(folder / "manifest.jsonl") if r["audio"] == args.file)
    device = device_info(engine.device)
    common = {
        "combination": {"engine": engine.name, "model": engine.model_name, "plugins": engine.applied_plugins},
        "origin": origin,
        "device": device,
        "threads": torch.get_num_threads(),
        "word_timing": {m: diarizers[m].plan.alignment.to_dict() for m in ("fast", "accurate")},
        "threshold": DEFAULT_THRESHOLD,
        "min_cluster_s": DiarizationOptions().min_cluster_s,
        "window_step_s": DiarizationOptions().window_step_s,
        "commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    rows = []
    if not args.skip_calibration:
        rows.append({"kind": "calibration", **common, **calibrate()})
    rows.append({"kind": "long", **common, **run_long(diarizers, folder / args.file, record, args.repeats)})
    out = args.out or REPO_ROOT / "reports" / device["key"]
    append_jsonl(out / "diarization.jsonl", rows)
    print(write_markdown(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
