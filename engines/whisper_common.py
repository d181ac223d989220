"""What the whisper and whisper_lean engines share: the options both refuse, a clip's ``Transcript`` from segments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from asrforge.engines.base import DecodeOptions
from asrforge.errors import UnsupportedOptionError
from asrforge.transcript import Segment, Transcript, Word


def check_decode_options(engine: str, options: DecodeOptions) -> None:
    """Refuse what transformers' Whisper decoding policy has no equivalent for (both engines follow it)."""
    if options.patience != 1.0:
        raise UnsupportedOptionError(
            f"patience is not supported by the {engine} engine (transformers' beam search has none); "
            "the faster_whisper engine has it",
            param="patience",
        )
    if options.no_speech_threshold is not None and options.log_prob_threshold is None:
        raise UnsupportedOptionError(
            f"no_speech_threshold needs log_prob_threshold on the {engine} engine (a window is skipped only when "
            "both say so)",
            param="no_speech_threshold",
        )


def check_max_new_tokens(options: DecodeOptions, max_target_positions: int, prompt_length: int) -> None:
    """A ``max_new_tokens`` the decoder's context can hold after the prompt and the start tokens."""
    if options.max_new_tokens is None:
        return
    room = max_target_positions - prompt_length - 4  # start, language, task, first token
    if not 0 < options.max_new_tokens <= room:
        raise UnsupportedOptionError(f"max_new_tokens must be in 1..{room} for this model and prompt")


class RawSegment(NamedTuple):
    """One decoded segment: its tokens (timestamps and specials included), start and end in seconds."""

    tokens: Sequence[int]
    start: float
    end: float


def transcript_from_segments(
    raw_segments: Sequence[RawSegment],
    text_of: Callable[[Sequence[int]], str],
    eot: int,
    language: str,
    duration: float,
    timings: dict[str, float],
    words_of: Callable[[int, float, float], tuple[Word, ...]] | None = None,
) -> Transcript:
    """``num_tokens`` counts generated text tokens (timestamps, prompt and special tokens left out), as the
    faster-whisper engine counts them; ``words_of(index, start, end)`` times a segment's words where asked."""
    segments: list[Segment] = []
    pieces: list[str] = []
    num_tokens = 0
    for index, (tokens, start, end) in enumerate(raw_segments):
        text = text_of(tokens)
        # Instantaneous or empty segments are dropped, as openai-whisper and faster-whisper drop them.
        if start == end or not text.strip():
            continue
        pieces.append(text)
        num_tokens += sum(t < eot for t in tokens)
        start, end = min(start, duration), min(end, duration)
        words = words_of(index, start, end) if words_of is not None else ()
        segments.append(
            Segment(id=len(segments), start=round(start, 3), end=round(end, 3), text=text.strip(), words=words)
        )
    return Transcript(
        text="".join(pieces).strip(),
        language=language,
        duration_s=duration,
        segments=segments,
        num_tokens=num_tokens,
        timings=dict(timings),
    )
