"""The one result type that flows from engines to the harness, the CLI and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # set by diarization (asrforge/diarization): who says this segment


@dataclass(slots=True)
class Transcript:
    """What an engine returns for one input: text, timing of its pieces, and what it cost.

    ``timings`` holds per-stage wall times in seconds (``features_s``, ``encode_s``, ``decode_s``, ``total_s``);
    for a batched call every item carries the batch's times, because that is the latency its caller saw.
    """

    text: str
    language: str | None
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    num_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
