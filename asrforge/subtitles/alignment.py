"""Which word timing a request gets, and applying it to a decoded transcript.

``accurate`` asks the engine for word timestamps while it decodes when it can (Whisper: dynamic time warping over
the cross-attention of its alignment heads, as transformers and CTranslate2 implement it); for Qwen3-ASR it runs
Qwen3-ForcedAligner when its weights are configured. Where no aligner is available the request falls back to the
``fast`` heuristic and says why: the response names the method actually used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.subtitles.options import SubtitleOptions
from asrforge.subtitles.refine import refine_words
from asrforge.subtitles.timing_fast import heuristic_words
from asrforge.transcript import Transcript

HEURISTIC = "heuristic"  # characters over the VAD speech inside each decoder segment
DECODER_DTW = {"whisper": "whisper-cross-attention-dtw", "faster_whisper": "ctranslate2-cross-attention-dtw"}
QWEN3_FORCED_ALIGNER = "qwen3-forced-aligner"


@dataclass(frozen=True)
class Alignment:
    """How the words of a response were timed: what was asked, what ran, and why that differs (if it does)."""

    mode: str
    method: str
    fallback_reason: str | None = None
    weights: str | None = None  # the aligner's checkpoint (path + content hash) where a separate aligner ran

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": self.mode, "method": self.method}
        if self.weights:
            body["weights"] = self.weights
        if self.fallback_reason:
            body["fallback_reason"] = self.fallback_reason
        return body

    def describe(self) -> str:
        """One line for the CLI's stderr."""
        reason = f" (fell back: {self.fallback_reason})" if self.fallback_reason else ""
        return f"subtitle timing: {self.mode} mode, {self.method}{reason}"


@dataclass(frozen=True)
class TimingPlan:
    """Decided before decoding: the decode options (word timestamps on when the decoder aligns) and the method."""

    options: DecodeOptions
    alignment: Alignment


def plan_timing(engine: BaseEngine, options: DecodeOptions, subtitles: SubtitleOptions) -> TimingPlan:
    """How ``engine`` times words for ``subtitles.mode``; never refuses: a missing aligner falls back to fast."""
    if subtitles.mode == "fast":
        return TimingPlan(replace(options, word_timestamps=False), Alignment("fast", HEURISTIC))
    if engine.capabilities.word_timestamps:
        method = DECODER_DTW.get(engine.name, f"{engine.name}-word-timestamps")
        return TimingPlan(replace(options, word_timestamps=True), Alignment("accurate", method))
    plain = replace(options, word_timestamps=False)
    if engine.name == "qwen3_asr":
        aligner = subtitles.qwen3_aligner
        if aligner and Path(aligner).is_dir():
            return TimingPlan(plain, Alignment("accurate", QWEN3_FORCED_ALIGNER))
        reason = (
            f"no Qwen3-ForcedAligner checkpoint at subtitles.qwen3_aligner={aligner!r}"
            if aligner
            else "Qwen3-ForcedAligner weights were not supplied (set subtitles.qwen3_aligner to their directory)"
        )
        return TimingPlan(plain, Alignment("accurate", HEURISTIC, reason))
    return TimingPlan(plain, Alignment("accurate", HEURISTIC, f"{engine.name} has no word aligner"))


def apply_timing(
    plan: TimingPlan,
    transcript: Transcript,
    audio: np.ndarray,
    speech: Sequence[tuple[float, float]] = (),
    qwen3_aligner: str | None = None,
) -> tuple[Transcript, Alignment]:
    """``transcript`` with words on every segment, timed as ``plan`` says; ``speech`` (seconds) feeds the heuristic;
    ``qwen3_aligner`` is the aligner directory a ``qwen3-forced-aligner`` plan loads.

    A segment the decoder left without words (a re-decode without timestamps, an empty alignment) is timed by the
    heuristic, and the alignment says so.
    """
    alignment = plan.alignment
    if alignment.method == QWEN3_FORCED_ALIGNER:
        from asrforge.engines.qwen3_forced_aligner import forced_aligner

        try:
            aligner = forced_aligner(qwen3_aligner)
            return aligner.align(transcript, audio), replace(alignment, weights=aligner.weights)
        except (OSError, ValueError, ImportError) as error:
            reason = f"Qwen3-ForcedAligner at {qwen3_aligner!r} failed: {error}"
            return heuristic_words(transcript, speech), Alignment(alignment.mode, HEURISTIC, reason)
    if alignment.method == HEURISTIC:
        return heuristic_words(transcript, speech), alignment
    transcript = refine_words(transcript, speech)
    missing = [s for s in transcript.segments if not s.words and s.text.strip()]
    if not missing:
        return transcript, alignment
    filled = heuristic_words(replace(transcript, segments=missing), speech).segments
    by_id = {id(old): new for old, new in zip(missing, filled, strict=True)}
    segments = [by_id.get(id(s), s) for s in transcript.segments]
    reason = f"{len(missing)} of {len(transcript.segments)} segments had no aligned words and were timed heuristically"
    return replace(transcript, segments=segments), replace(alignment, fallback_reason=reason)
