"""The clustering threshold, chosen on speakers the report never scores: eval/multi and eval/zh clips (one speaker
each, none of them in eval/dev or eval/long). Each clip is cut in two halves, and all halves are joined in a seeded
shuffle with 0.3-1.5 s of silence between them, so that one speaker comes back later in the recording (a wrong
split is scored) beside many other voices (a wrong merge is scored). The threshold with the lowest DER wins; ties go
to the one that counts the speakers right, then to the middle of the tied range."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from pyannote.core import Annotation, Segment

from asrforge.audio import load_audio
from asrforge.constants import SAMPLE_RATE
from asrforge.diarization import DiarizationOptions, diarize
from asrforge.experiments.diarization.reference import hypothesis_annotation
from asrforge.experiments.diarization.scoring import der
from asrforge.experiments.jsonl import read_jsonl
from asrforge.paths import eval_data_dir
from asrforge.vad import SpeechDetector

FOLDERS = ("multi", "zh")
THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
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


def calibrate(thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """One row per threshold (DER, speakers found) and the chosen threshold."""
    audio, reference = calibration_recording()
    spans = SpeechDetector().speech_spans(audio)
    duration_s = audio.size / SAMPLE_RATE
    truth = len(reference.labels())
    rows = []
    for threshold in thresholds:
        found = diarize(audio, spans, DiarizationOptions(threshold=threshold))
        score = der(reference, hypothesis_annotation(found.turns), duration_s)
        rows.append({"threshold": threshold, "speakers": len(found.speakers), **score})
    best = min(r["der"] for r in rows)
    tied = [r for r in rows if r["der"] <= best + 1e-9]
    right = [r for r in tied if r["speakers"] == truth] or tied
    chosen = right[len(right) // 2]["threshold"]
    return {
        "recording_s": round(duration_s, 1),
        "speakers": truth,
        "clips": sorted(set(reference.labels())),
        "rows": rows,
        "chosen": chosen,
    }
