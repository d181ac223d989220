"""What a diarization run may be told: speaker-count bounds, the clustering threshold, the embedding windows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from asrforge.diarization.clustering import DEFAULT_THRESHOLD
from asrforge.subtitles.options import SubtitleOptions

MAX_KNOWN_SPEAKERS = 4  # as OpenAI's gpt-4o-transcribe-diarize


@dataclass(frozen=True)
class DiarizationOptions:
    min_speakers: int | None = None
    max_speakers: int | None = None
    threshold: float = DEFAULT_THRESHOLD  # cosine distance at which clustering stops merging
    max_piece_s: float = 3.2  # speech spans are cut into pieces no longer than this, one embedding each
    # A piece's embedding is the mean over 1.6-s encoder windows this far apart: 0.8 s overlaps them by half (as
    # resemblyzer's own ~0.77 s); chosen by the calibration (experiments/diarization/calibration.py) over 1.6 s
    # (no overlap, half the encoder cost), which split and merged more speakers there.
    window_step_s: float = 0.8
    # Pieces shorter than one encoder window (1.6 s, so zero-padded) do not take part in clustering; they join the
    # nearest speaker. (1.2 s in the first study run let JFK's short phrases open speakers of their own.)
    min_cluster_s: float = 1.6
    # How the words that place speaker changes are timed: "fast" lays them over the VAD speech of their segment
    # (no cost); "accurate" decodes with word timestamps (cross-attention DTW), which made the whole decode ~1.5x
    # slower in the study (reports/cpu/diarization.md); None follows the subtitles settings.
    word_timing: Literal["fast", "accurate"] | None = "fast"
    # A cluster takes a known speaker's name when its centroid lies within this cosine distance of the reference.
    name_threshold: float = 0.4

    def __post_init__(self) -> None:
        for name in ("min_speakers", "max_speakers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            raise ValueError(f"min_speakers ({self.min_speakers}) is more than max_speakers ({self.max_speakers})")
        if not 0.1 <= self.window_step_s <= 1.6:
            raise ValueError(f"window_step_s must be within 0.1-1.6 s (the encoder's window), got {self.window_step_s}")
        if self.max_piece_s < 0.5:
            raise ValueError(f"max_piece_s must be at least 0.5 s, got {self.max_piece_s}")

    def timing(self, subtitles: SubtitleOptions) -> SubtitleOptions:
        """The subtitles settings with this run's word timing mode."""
        return replace(subtitles, mode=self.word_timing) if self.word_timing else subtitles
