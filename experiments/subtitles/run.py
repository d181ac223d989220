"""Subtitle timing benchmark: boundary error and latency cost of ``fast`` and ``accurate`` word timing.

``asrforge run subtitles`` decodes ``eval/long/dev_concat_once.wav`` (27 real
utterances whose start/end are in its manifest) as the server does (one Silero VAD pass, 30-s chunks cut at pauses,
decoded one after another, stitched) in three modes, interleaved over ``--repeats`` trials:

- ``none``: no word timing; one cue per decoder segment (SRT without the subtitles package: the latency baseline),
- ``fast``: the same decode, words placed by the heuristic, cues laid out,
- ``accurate``: the decode with word timestamps (cross-attention DTW), tidied and snapped into speech, laid out.

The VAD pass is shared by all three (chunking needs it), so on long audio it costs the timing nothing. Short clips
(no chunking) need a VAD pass of their own for timing, run beside the decode as the server runs it: ``--short`` dev
clips measure that cost. Records are appended to ``reports/<device>/subtitles.jsonl``; ``subtitles.md`` beside it
is rendered from them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import numpy as np
import torch

from asrforge.audio import load_audio
from asrforge.chunking import Chunk, plan_chunks, stitch
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.experiments.bench.run import git_commit
from asrforge.experiments.device import add_engine_arguments, device_info, load_study_engine
from asrforge.experiments.jsonl import append_jsonl, read_jsonl
from asrforge.experiments.subtitles.report import write_markdown
from asrforge.experiments.subtitles.scoring import boundary_errors, speech_bounds, summary_ms
from asrforge.formats import to_srt
from asrforge.paths import REPO_ROOT, eval_data_dir
from asrforge.subtitles.alignment import Alignment, apply_timing, plan_timing
from asrforge.subtitles.options import SubtitleOptions, load_subtitle_options
from asrforge.subtitles.render import cues_to_srt, subtitle_cues
from asrforge.subtitles.timing_fast import unpadded_speech
from asrforge.vad import SpeechDetector, VADOptions

MODES = ("none", "fast", "accurate")
VAD = VADOptions()


def subtitles_for(
    engine: BaseEngine,
    mode: str,
    audio: np.ndarray,
    chunks: Sequence[Chunk],
    speech: Sequence[tuple[float, float]],
    subtitles: SubtitleOptions,
) -> tuple[str, Alignment | None, float]:
    """The SRT body of ``audio`` in ``mode``, the alignment used (None for ``none``) and the seconds spent after
    the decode (timing the words, laying out and rendering the cues)."""
    plan = None if mode == "none" else plan_timing(engine, DecodeOptions(), _with_mode(subtitles, mode))
    options = plan.options if plan else DecodeOptions()
    pieces = [engine.transcribe([c.audio(audio)], options)[0] for c in chunks]
    transcript = stitch(chunks, pieces, len(audio) / SAMPLE_RATE)
    started = time.perf_counter()
    if plan is None:
        return to_srt(transcript), None, time.perf_counter() - started
    timed, alignment = apply_timing(plan, transcript, audio, speech, subtitles.qwen3_aligner)
    body = cues_to_srt(subtitle_cues(timed, subtitles.layout))
    return body, alignment, time.perf_counter() - started


def _with_mode(subtitles: SubtitleOptions, mode: str) -> SubtitleOptions:
    return SubtitleOptions(mode=mode, qwen3_aligner=subtitles.qwen3_aligner, layout=subtitles.layout)


def _rotations(repeats: int) -> list[tuple[str, ...]]:
    """Mode orders for each trial, rotated so that no mode always runs first (or right after another)."""
    return [MODES[t % len(MODES) :] + MODES[: t % len(MODES)] for t in range(repeats)]


def _latency(seconds: list[float]) -> dict:
    return {"median": round(median(seconds), 3), "trials": [round(s, 3) for s in seconds]}


def run_long(engine: BaseEngine, path: Path, record: dict, repeats: int, subtitles: SubtitleOptions) -> list[dict]:
    """One record per mode: boundary errors against the manifest and against the speech, latency, overhead."""
    audio = load_audio(path)
    started = time.perf_counter()
    spans = SpeechDetector(VAD).speech_spans(audio)
    vad_s = time.perf_counter() - started
    chunks = plan_chunks(spans, audio.size, engine.capabilities.window_s, SAMPLE_RATE, audio=audio)
    speech = unpadded_speech(spans, VAD.speech_pad_ms)
    for mode in MODES:  # one warm-up decode per mode: first calls pay one-off costs
        subtitles_for(engine, mode, audio, chunks[:1], speech, subtitles)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    after_decode: dict[str, list[float]] = {mode: [] for mode in MODES}
    bodies: dict[str, tuple[str, Alignment | None]] = {}
    for order in _rotations(repeats):
        for mode in order:
            started = time.perf_counter()
            body, alignment, timing_s = subtitles_for(engine, mode, audio, chunks, speech, subtitles)
            seconds[mode].append(time.perf_counter() - started)
            after_decode[mode].append(timing_s)
            bodies[mode] = body, alignment
    utterances = record["utterances"]
    manifest = [(u["start"], u["end"]) for u in utterances]
    voiced = [speech_bounds(audio, start, end) for start, end in manifest]
    base = median(seconds["none"])
    records = []
    for mode in MODES:
        body, alignment = bodies[mode]
        records.append(
            {
                "mode": mode,
                "alignment": alignment.to_dict() if alignment else None,
                "file": path.name,
                "audio_s": round(len(audio) / SAMPLE_RATE, 3),
                "utterances": len(utterances),
                "chunks": len(chunks),
                "cues": body.count(" --> "),
                "vad_s": round(vad_s, 3),
                "latency_s": _latency(seconds[mode]),
                "after_decode_s": round(median(after_decode[mode]), 4),
                "overhead_ratio": round(median(seconds[mode]) / base, 3),
                "error_vs_manifest": summary_ms(boundary_errors(body, utterances, manifest)),
                "error_vs_speech": summary_ms(boundary_errors(body, utterances, voiced)),
            }
        )
    return records


def run_short(engine: BaseEngine, paths: Sequence[Path], repeats: int, subtitles: SubtitleOptions) -> list[dict]:
    """Latency on short clips (one chunk each), where timing needs a VAD pass of its own; as in the server, that
    pass runs in a worker thread beside the decode."""
    clips = [load_audio(p) for p in paths]
    detector = SpeechDetector(VAD)
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    with ThreadPoolExecutor(1) as pool:

        def one(mode: str, clip: np.ndarray) -> None:
            whole = [Chunk(0, clip.size)]
            if mode == "none":
                subtitles_for(engine, mode, clip, whole, [], subtitles)
                return
            spans = pool.submit(detector.speech_spans, clip)
            # The decode does not need the spans, the timing does: decode first, then wait for them.
            plan = plan_timing(engine, DecodeOptions(), _with_mode(subtitles, mode))
            transcript = engine.transcribe([clip], plan.options)[0]
            speech = unpadded_speech(spans.result(), VAD.speech_pad_ms)
            timed, _ = apply_timing(plan, transcript, clip, speech, subtitles.qwen3_aligner)
            cues_to_srt(subtitle_cues(timed, subtitles.layout))

        for mode in MODES:
            one(mode, clips[0])
        for order in _rotations(repeats):
            for mode in order:
                started = time.perf_counter()
                for clip in clips:
                    one(mode, clip)
                seconds[mode].append(time.perf_counter() - started)
    vad_started = time.perf_counter()
    for clip in clips:
        detector.speech_spans(clip)
    vad_per_clip = (time.perf_counter() - vad_started) / len(clips)
    base = median(seconds["none"])
    return [
        {
            "mode": mode,
            "files": len(clips),
            "audio_s": round(sum(c.size for c in clips) / SAMPLE_RATE, 3),
            "latency_s": _latency(seconds[mode]),
            "overhead_ratio": round(median(seconds[mode]) / base, 3),
            "vad_s_per_clip": round(vad_per_clip, 4) if mode != "none" else 0.0,
        }
        for mode in MODES
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asrforge run subtitles", description=__doc__.split("\n")[0])
    parser.add_argument("--file", default="dev_concat_once.wav", help="a file of eval/long (its manifest has times)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved trials per mode")
    parser.add_argument("--short", type=int, default=8, help="dev clips for the short-clip latency (0: skip)")
    add_engine_arguments(parser)
    parser.add_argument("--out", type=Path, help="report folder (default: reports/<device>)")
    args = parser.parse_args(argv)
    engine, origin = load_study_engine(args)
    subtitles = load_subtitle_options()
    folder = eval_data_dir() / "long"
    manifest = read_jsonl(folder / "manifest.jsonl")
    record = next(r for r in manifest if r["audio"] == args.file)
    device = device_info(engine.device)
    common = {
        "combination": {"engine": engine.name, "model": engine.model_name, "plugins": engine.applied_plugins},
        "origin": origin,
        "device": device,
        "threads": torch.get_num_threads(),
        "layout": vars(subtitles.layout),
        "commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    long = run_long(engine, folder / args.file, record, args.repeats, subtitles)
    rows = [{"kind": "long", **common, **r} for r in long]
    if args.short:
        paths = sorted((eval_data_dir() / "dev").glob("*.wav"))[: args.short]
        rows += [{"kind": "short", **common, **r} for r in run_short(engine, paths, args.repeats, subtitles)]
    out = args.out or REPO_ROOT / "reports" / device["key"]
    append_jsonl(out / "subtitles.jsonl", rows)
    print(write_markdown(out))
    return 0
