"""Who spoke when: speech spans cut into pieces, one embedding per piece, pieces clustered into speakers, and
consecutive pieces of one speaker merged into turns. Speakers are named by known references when given, else
A, B, C... in order of first appearance (as OpenAI labels them)."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from asrforge.diarization.clustering import by_first_appearance, centroids, cluster_speakers
from asrforge.diarization.encoder import HOP, SAMPLE_RATE, embed_pieces
from asrforge.diarization.options import DiarizationOptions


@dataclass(frozen=True, slots=True)
class Turn:
    start: float  # seconds
    end: float
    speaker: str


@dataclass
class Diarization:
    turns: list[Turn]
    speakers: list[str]  # in order of first appearance
    centroids: np.ndarray = field(repr=False)  # (speakers, 256), same order

    def speaker_at(self, start: float, end: float) -> str | None:
        """The speaker who talks most within [start, end]; the nearest turn's when none overlaps."""
        if not self.turns:
            return None
        overlaps = [min(end, t.end) - max(start, t.start) for t in self.turns]
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0:
            return self.turns[best].speaker
        middle = (start + end) / 2
        return min(self.turns, key=lambda t: min(abs(middle - t.start), abs(middle - t.end))).speaker


def split_spans(spans: Sequence[tuple[int, int]], max_piece_s: float) -> list[tuple[int, int]]:
    """Each [start, end) span (samples) cut into the fewest equal pieces no longer than ``max_piece_s``."""
    limit = int(max_piece_s * SAMPLE_RATE)
    pieces: list[tuple[int, int]] = []
    for start, end in spans:
        count = max(1, -(-(end - start) // limit))
        edges = np.linspace(start, end, count + 1).round().astype(int)
        pieces += [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    return pieces


@dataclass(frozen=True)
class EmbeddedSpeech:
    """Speech cut into pieces ([start, end) samples), one speaker embedding per piece (rows in piece order)."""

    pieces: list[tuple[int, int]]
    embeddings: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.array([end - start for start, end in self.pieces], dtype=float)


def embed_speech(
    samples: np.ndarray, speech_spans: Sequence[tuple[int, int]], options: DiarizationOptions = DiarizationOptions()
) -> EmbeddedSpeech:
    pieces = split_spans(speech_spans, options.max_piece_s)
    return EmbeddedSpeech(pieces, embed_pieces(samples, pieces, _step_frames(options)))


def diarize(
    samples: np.ndarray,
    speech_spans: Sequence[tuple[int, int]],
    options: DiarizationOptions = DiarizationOptions(),
    references: Mapping[str, np.ndarray] | None = None,
) -> Diarization:
    """Speaker turns of 16 kHz ``samples`` within ``speech_spans`` (Silero's, in samples); ``references`` maps known
    speakers' names to short audio samples of their voice."""
    return cluster_speech(embed_speech(samples, speech_spans, options), options, references)


def cluster_speech(
    speech: EmbeddedSpeech,
    options: DiarizationOptions = DiarizationOptions(),
    references: Mapping[str, np.ndarray] | None = None,
) -> Diarization:
    """Speaker turns of embedded speech pieces (the clustering half of ``diarize``, which the calibration runs at
    many thresholds over one embedding pass)."""
    if not speech.pieces:
        return Diarization([], [], np.zeros((0, 256), dtype=np.float32))
    embeddings, lengths = speech.embeddings, speech.lengths
    labels = _labels(embeddings, lengths, options)
    centres = centroids(embeddings, labels, lengths)
    names = _names(centres, references or {}, options)
    turns: list[Turn] = []
    for (start, end), label in zip(speech.pieces, labels, strict=True):
        speaker = names[label]
        start_s, end_s = start / SAMPLE_RATE, end / SAMPLE_RATE
        if turns and turns[-1].speaker == speaker and start_s - turns[-1].end < 1e-6:
            turns[-1] = Turn(turns[-1].start, end_s, speaker)  # the next piece of the same span, same speaker
        else:
            turns.append(Turn(start_s, end_s, speaker))
    return Diarization(turns, names, centres)


def _step_frames(options: DiarizationOptions) -> int:
    return max(1, round(options.window_step_s * SAMPLE_RATE / HOP))


def _labels(embeddings: np.ndarray, lengths: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    """Cluster the pieces long enough for a steady embedding; each shorter piece (a breath-bounded phrase, mostly
    silence once padded to the encoder's 1.6-s window) joins the speaker whose centroid is nearest, so that it cannot
    open a speaker of its own. With no long piece, every piece is clustered."""
    steady = lengths >= options.min_cluster_s * SAMPLE_RATE
    if not steady.any():
        steady[:] = True
    labels = np.empty(len(lengths), dtype=int)
    labels[steady] = cluster_speakers(embeddings[steady], options.threshold, options.min_speakers, options.max_speakers)
    if not steady.all():
        centres = centroids(embeddings[steady], labels[steady], lengths[steady])
        labels[~steady] = np.argmax(embeddings[~steady] @ centres.T, axis=1)
    return by_first_appearance(labels)


def embed_references(
    references: Mapping[str, np.ndarray], options: DiarizationOptions = DiarizationOptions()
) -> np.ndarray:
    """One embedding per reference sample (rows in ``references`` order), each over the whole sample."""
    samples = list(references.values())
    if not samples:
        return np.zeros((0, 256), dtype=np.float32)
    joined = np.concatenate(samples)
    bounds = np.cumsum([0] + [s.size for s in samples])
    pieces = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return embed_pieces(joined, pieces, _step_frames(options))


def _names(centres: np.ndarray, references: Mapping[str, np.ndarray], options: DiarizationOptions) -> list[str]:
    """A name per cluster: the known speaker it matches (one-to-one, closest first, within the options'
    ``name_threshold``), else the next free capital letter."""
    names: list[str | None] = [None] * len(centres)
    if references:
        known = list(references)
        distance = 1.0 - centres @ embed_references(references, options).T  # (clusters, references)
        for row, col in zip(*linear_sum_assignment(distance), strict=True):
            if distance[row, col] <= options.name_threshold:
                names[row] = known[col]
    letters = (letter for letter in _letters() if letter not in set(names))
    return [name if name is not None else next(letters) for name in names]


def _letters():
    yield from string.ascii_uppercase
    yield from (a + b for a in string.ascii_uppercase for b in string.ascii_uppercase)
