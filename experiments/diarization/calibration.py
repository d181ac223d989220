"""The clustering threshold and the embedding windows' step, chosen on speakers the report never scores: eval/multi
and eval/zh clips (one speaker each, none of them in eval/dev or eval/long). Each clip is cut in two halves, and all
halves are joined in a seeded shuffle with 0.3-1.5 s of silence between them, so that one speaker comes back later in
the recording (a wrong split is scored) beside many other voices (a wrong merge is scored).

Every window step is tried with every threshold on a 0.01 grid (the clustering only changes at the dendrogram's
merge heights, so a finer grid finds the same plateaus). The step whose best DER is lowest wins (ties: the cheaper,
longer step); within it the threshold with the lowest DER wins, ties going to the one that counts the speakers right,
then to the middle of the tied range: the threshold farthest from both the nearest wrong merge and the nearest wrong
split seen here, so the least likely to flip on another recording."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from pyannote.core import Annotation, Segment

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.diarization import DiarizationOptions
from asrforge.diarization.turns import EmbeddedSpeech, cluster_speech, embed_speech
from asrforge.experiments.diarization.reference import hypothesis_annotation
from asrforge.experiments.diarization.scoring import der
from asrforge.experiments.jsonl import read_jsonl
from asrforge.paths import eval_data_dir
from asrforge.vad import SpeechDetector

FOLDERS = ("multi", "zh")
THRESHOLDS = tuple(round(0.2 + 0.01 * i, 2) for i in range(31))  # 0.20 ... 0.50
WINDOW_STEPS_S = (1.6, 0.8)  # windows side by side, or overlapping by half (resemblyzer)
SEED = 0


def calibration_recording() -> tuple[np.ndarray, Annotation]:
    halves: list[tuple[str, np.ndarray]] = []
    for folder in FOLDERS:
        for record in read_jsonl(eval_data_dir() / folder / "manifest.jsonl"):
            audio = load_audio(eval_data_dir() / folder / record["audio"])
            middle = audio.size // 2
            halves += [(f"{folder}/{record['audio']}", audio[:middle]), (f"{folder}/{record['audio']}", audio[middle:])]
    rng = random.Random(SEED)
    rng.shuffle(halves)
    pieces: list[np.ndarray] = [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
    reference = Annotation()
    cursor = pieces[0].size
    for speaker, audio in halves:
        reference[Segment(cursor / SAMPLE_RATE, (cursor + audio.size) / SAMPLE_RATE)] = speaker
        gap = np.zeros(int(rng.uniform(0.3, 1.5) * SAMPLE_RATE), dtype=np.float32)
        pieces += [audio, gap]
        cursor += audio.size + gap.size
    return np.concatenate(pieces), reference


def calibrate(thresholds: Sequence[float] = THRESHOLDS, steps: Sequence[float] = WINDOW_STEPS_S) -> dict:
    """One row per (window step, threshold): DER, speakers found; and the chosen step and threshold."""
    audio, reference = calibration_recording()
    spans = SpeechDetector().speech_spans(audio)
    duration_s = audio.size / SAMPLE_RATE
    truth = len(reference.labels())
    rows = []
    for step in steps:
        speech = embed_speech(audio, spans, DiarizationOptions(window_step_s=step))  # once per step
        for threshold in thresholds:
            found = cluster_speech(speech, DiarizationOptions(threshold=threshold, window_step_s=step))
            score = der(reference, hypothesis_annotation(found.turns), duration_s)
            rows.append({"step_s": step, "threshold": threshold, "speakers": len(found.speakers), **score})
    step, threshold = choose(rows, truth)
    return {
        "recording_s": round(duration_s, 1),
        "speakers": truth,
        "speakers_clusterable": clusterable_speakers(speech, reference, DiarizationOptions().min_cluster_s),
        "clips": sorted(set(reference.labels())),
        "rows": rows,
        "chosen": threshold,
        "chosen_step_s": step,
    }


def choose(rows: Sequence[dict], truth: int) -> tuple[float, float]:
    """(window step, threshold) by the rule in this module's docstring; ``rows`` in ascending threshold order."""
    best = min(r["der"] for r in rows)
    step = max(r["step_s"] for r in rows if r["der"] <= best + 1e-9)
    own = [r for r in rows if r["step_s"] == step]
    lowest = min(r["der"] for r in own)
    tied = [r for r in own if r["der"] <= lowest + 1e-9]
    right = [r for r in tied if r["speakers"] == truth] or tied
    return step, right[len(right) // 2]["threshold"]


def clusterable_speakers(speech: EmbeddedSpeech, reference: Annotation, min_cluster_s: float) -> int:
    """How many reference speakers talk for most of at least one piece of ``min_cluster_s`` or more: only those can
    open a cluster of their own (shorter pieces join the nearest speaker), so the count found is at most this."""
    speakers = set()
    for start, end in speech.pieces:
        if end - start >= min_cluster_s * SAMPLE_RATE:
            inside = reference.crop(Segment(start / SAMPLE_RATE, end / SAMPLE_RATE))
            if inside.labels():
                speakers.add(max(inside.labels(), key=inside.label_duration))
    return len(speakers)
