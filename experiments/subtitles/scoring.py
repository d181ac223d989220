"""Scoring subtitle timing against a recording whose utterance start/end times are known (``eval/long``).

Every utterance boundary is scored by the cue that holds the utterance's first word (its start against the cue's
start) or its last word (its end against the cue's end), read back from the SRT with the ``srt`` parser. Which
recognised word belongs to which utterance comes from aligning the recognised words with the reference words
(difflib), so a cue that runs on over an utterance boundary is charged the whole distance, not forgiven.

Two references: the manifest's boundaries (where each source clip was placed; they include the silence the clip
itself starts and ends with: up to 1.2 s) and the speech inside them (the first and last 10-ms frame of the clip
within 35 dB of its loudest frame). A perfect aligner scores zero against the second, not the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from statistics import mean, median

import numpy as np
import srt

from asrforge.constants import SAMPLE_RATE

_WORD = re.compile(r"[^a-z0-9']+")
FRAME_S = 0.01
SPEECH_RANGE_DB = 35.0


def normalise(word: str) -> str:
    return _WORD.sub("", word.lower())


def speech_bounds(
    audio: np.ndarray, start_s: float, end_s: float, sample_rate: int = SAMPLE_RATE
) -> tuple[float, float]:
    """First and last moment of speech inside [start_s, end_s]: frames within 35 dB of the loudest frame."""
    clip = audio[int(start_s * sample_rate) : int(end_s * sample_rate)]
    hop = int(FRAME_S * sample_rate)
    frames = clip[: len(clip) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.square(frames, dtype=np.float64).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - SPEECH_RANGE_DB)
    return start_s + loud[0] * FRAME_S, start_s + (loud[-1] + 1) * FRAME_S


def word_cues(body: str) -> tuple[list[str], list[tuple[float, float]]]:
    """The recognised words of an SRT body and, per word, the (start, end) of the cue that shows it."""
    words, spans = [], []
    for cue in srt.parse(body):
        for word in cue.content.split():
            if normalise(word):  # a lone dash or quote is no word to align
                words.append(normalise(word))
                spans.append((cue.start.total_seconds(), cue.end.total_seconds()))
    return words, spans


def utterance_of_words(words: Sequence[str], utterances: Sequence[Mapping]) -> list[int | None]:
    """For each recognised word, the index of the utterance whose reference word it aligns with.

    A run of misrecognised words that replaces a run of reference words is spread over that run in proportion
    ("1450" for "fourteen fifty" belongs to the utterance of "fourteen"); an inserted word with no reference word
    takes its earlier neighbour's utterance (the later one's at the very start). None only when nothing aligns.
    """
    reference, owner = [], []
    for index, utterance in enumerate(utterances):
        for word in utterance["text"].split():
            if normalise(word):
                reference.append(normalise(word))
                owner.append(index)
    assigned: list[int | None] = [None] * len(words)
    matcher = SequenceMatcher(None, list(words), reference, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            for k in range(a0, a1):
                assigned[k] = owner[b0 + (k - a0) * (b1 - b0) // (a1 - a0)]
    for index in range(1, len(assigned)):  # inserted words: fill forward, then backward
        if assigned[index] is None:
            assigned[index] = assigned[index - 1]
    for index in reversed(range(len(assigned) - 1)):
        if assigned[index] is None:
            assigned[index] = assigned[index + 1]
    return assigned


@dataclass(frozen=True)
class BoundaryErrors:
    """Absolute errors in seconds, one per utterance that has a recognised word; ``missed``: those with none."""

    start: list[float]
    end: list[float]
    missed: int


def boundary_errors(body: str, utterances: Sequence[Mapping], bounds: Sequence[tuple[float, float]]) -> BoundaryErrors:
    """Errors of the SRT ``body``'s cue starts and ends against ``bounds`` (one (start, end) per utterance)."""
    words, spans = word_cues(body)
    owners = utterance_of_words(words, utterances)
    mine: dict[int, list[int]] = {}
    for k, owner in enumerate(owners):
        if owner is not None:
            mine.setdefault(owner, []).append(k)
    starts, ends = [], []
    for index, (start, end) in enumerate(bounds):
        if index in mine:
            starts.append(abs(spans[mine[index][0]][0] - start))
            ends.append(abs(spans[mine[index][-1]][1] - end))
    return BoundaryErrors(starts, ends, len(bounds) - len(starts))


def summary_ms(errors: BoundaryErrors) -> dict[str, float | int | None]:
    """Mean and median absolute error in ms of starts, ends and both together (None where nothing was scored)."""

    def ms(values: list[float], pick) -> float | None:
        return round(pick(values) * 1000, 1) if values else None

    both = errors.start + errors.end
    return {
        "start_mean_ms": ms(errors.start, mean),
        "start_median_ms": ms(errors.start, median),
        "end_mean_ms": ms(errors.end, mean),
        "end_median_ms": ms(errors.end, median),
        "mean_ms": ms(both, mean),
        "median_ms": ms(both, median),
        "boundaries": len(both),
        "utterances_missed": errors.missed,
    }
