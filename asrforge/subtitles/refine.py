"""Aligner word times tidied the way openai-whisper and faster-whisper tidy them, then pulled into detected speech.

Cross-attention DTW tends to stretch the first word of a segment back to the segment's start (often silence), the
word after a pause back into the pause, and the last word of a segment on into the next one. A word after a pause
that is longer than twice the median word is cut to that, keeping its end. Then a word that starts in silence
starts where the speech does and one that ends in silence ends where the speech stops (stable-ts calls this
silence suppression); a word still too long and spanning a pause keeps only one side of the pause: the last word
of a segment the side before it, any other word the side that holds more of it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from statistics import median

from asrforge.transcript import Transcript

_MEDIAN_CAP_S = 0.7  # openai-whisper's cap on the median word duration used for the bound
_PAUSE_S = 0.2  # a word after a gap this long counts as after a pause
_EDGE_S = 0.6  # how far the first (last) word of a speech span is moved to the span's onset (offset)


def refine_words(transcript: Transcript, speech: Sequence[tuple[float, float]] = ()) -> Transcript:
    """``transcript`` with each segment's words bounded in length after pauses and snapped into ``speech``."""
    durations = [w.end - w.start for s in transcript.segments for w in s.words if w.end > w.start]
    longest = 2 * min(median(durations), _MEDIAN_CAP_S) if durations else None
    starts = [s for s, _ in speech]
    segments = []
    previous_end = 0.0
    for segment in transcript.segments:
        words = []
        for index, word in enumerate(segment.words):
            start, end = word.start, word.end
            after_pause = index == 0 or start - previous_end >= _PAUSE_S
            if longest is not None and after_pause and end - start > longest:
                start = end - longest
            if speech:
                start, end = _snap(start, end, speech, starts)
                if longest is not None and end - start > longest:
                    # The last word of a segment overruns into what follows (its end is the unreliable side). Any
                    # other word may be stretched either way: back over the pause before it, or (the last word of
                    # a sentence that the decoder ran on into the next one) on over the pause after it, so it
                    # keeps the side with more of it.
                    if index == len(segment.words) - 1:
                        end = _first_offset_inside(start, end, speech)
                    else:
                        start, end = _side_holding_most(start, end, speech)
            words.append(replace(word, start=round(start, 3), end=round(end, 3)))
            previous_end = word.end
        segments.append(replace(segment, words=tuple(words)))
    if speech:
        segments = _to_pause_edges(segments, speech, starts)
    return replace(transcript, segments=segments)


def _to_pause_edges(segments: list, speech: Sequence[tuple[float, float]], starts: list[float]) -> list:
    """The first word after a pause starts where its speech span does, the last word before one ends where the
    span does, when the edge is within ``_EDGE_S`` and inside the word's segment (DTW puts a short first word late
    and cuts a last word short; inside one span no other word can own that stretch)."""
    flat = [(i, j, w) for i, segment in enumerate(segments) for j, w in enumerate(segment.words)]
    moved: dict[tuple[int, int], tuple[float, float]] = {}
    for k, (i, j, word) in enumerate(flat):
        span = bisect.bisect_right(starts, word.start) - 1
        if span < 0 or word.start >= speech[span][1]:
            continue
        onset, offset = speech[span]
        start, end = word.start, word.end
        previous = flat[k - 1][2] if k > 0 else None
        following = flat[k + 1][2] if k + 1 < len(flat) else None
        segment = segments[i]  # a word stays inside its segment's times
        if (previous is None or previous.end <= onset) and 0 < start - onset <= _EDGE_S:
            start = min(start, max(onset, segment.start))
        if (following is None or following.start >= offset) and onset <= end < offset and offset - end <= _EDGE_S:
            end = max(end, min(offset, segment.end))
        if (start, end) != (word.start, word.end):
            moved[i, j] = (round(start, 3), round(end, 3))
    return [
        replace(
            segment,
            words=tuple(
                replace(w, start=moved[i, j][0], end=moved[i, j][1]) if (i, j) in moved else w
                for j, w in enumerate(segment.words)
            ),
        )
        for i, segment in enumerate(segments)
    ]


def _snap(start: float, end: float, speech: Sequence[tuple[float, float]], starts: list[float]) -> tuple[float, float]:
    """Move a start out of silence to the next speech onset and an end back to the last speech offset, when the
    word still overlaps speech after the move."""
    after = bisect.bisect_right(starts, start) - 1  # the last span starting at or before ``start``
    if after < 0 or start >= speech[after][1]:  # ``start`` lies in silence
        following = after + 1
        if following < len(speech) and speech[following][0] < end:
            start = speech[following][0]
    before = bisect.bisect_left(starts, end) - 1  # the last span starting before ``end``
    if before >= 0 and end > speech[before][1] and speech[before][1] > start:  # ``end`` lies in silence
        end = speech[before][1]
    return start, max(end, start)


def _side_holding_most(start: float, end: float, speech: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """A word stretched over a pause, cut to the speech span that holds most of it (unchanged if none does)."""
    overlaps = [(min(end, e) - max(start, s), max(start, s), min(end, e)) for s, e in speech if s < end and e > start]
    if not overlaps:
        return start, end
    _, kept_start, kept_end = max(overlaps)
    return kept_start, kept_end


def _first_offset_inside(start: float, end: float, speech: Sequence[tuple[float, float]]) -> float:
    """A segment's last word stretched over a pause ends where the speech before the pause does."""
    return next((e for s, e in speech if start < e < end and s < e), end)
