"""Long audio in model-sized pieces: group speech spans into chunks that fit the model's window, cutting only in
silence, and stitch the chunks' transcripts back into one transcript on the file's clock.

A chunk runs from its first span's start to its last span's end. Silero's spans already carry ``speech_pad_ms`` of
padding, so a cut between chunks lies in a pause, and silence between chunks is never sent to the model. Among the
pauses a chunk could end at, the widest late one wins: pauses between sentences are longer than breaths inside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asrforge.constants import SAMPLE_RATE, is_unspaced
from asrforge.transcript import Segment, Transcript, Word

# A span longer than the window is cut at the quietest 100 ms within this last part of the window.
QUIET_SEARCH = 0.2
_ENERGY_FRAME_S = 0.01
_ENERGY_SPAN_FRAMES = 10


@dataclass(frozen=True)
class Chunk:
    start: int  # samples
    end: int

    def audio(self, samples: np.ndarray) -> np.ndarray:
        """This chunk of ``samples``: a view, never a copy."""
        return samples[self.start : self.end]


def plan_chunks(
    spans: Sequence[tuple[int, int]],
    total: int,
    max_chunk_s: float,
    sample_rate: int = SAMPLE_RATE,
    audio: np.ndarray | None = None,
) -> list[Chunk]:
    """Consecutive speech spans merged into sorted, non-overlapping chunks of at most ``max_chunk_s``.

    Each chunk takes the spans that fit, then gives back those after the widest pause in its last third. A span
    longer than ``max_chunk_s`` is cut at the quietest 100 ms shortly before each limit when ``audio`` is given,
    else into equal pieces. No speech: no chunks.
    """
    limit = int(max_chunk_s * sample_rate)
    if limit <= 0:
        raise ValueError(f"max_chunk_s must be positive, got {max_chunk_s}")
    pieces: list[tuple[int, int]] = []
    cursor = 0
    for start, end in sorted(spans):
        start, end = max(start, cursor, 0), min(end, total)
        if end <= start:
            continue
        pieces += _split(start, end, limit, audio, sample_rate)
        cursor = end
    chunks: list[Chunk] = []
    first = 0
    while first < len(pieces):
        start = pieces[first][0]
        last = first
        while last + 1 < len(pieces) and pieces[last + 1][1] - start <= limit:
            last += 1
        if last + 1 < len(pieces):
            # More speech follows: end at the widest pause in the chunk's last third rather than the last one that
            # fits, so a chunk tends to end between utterances, not at a breath inside one.
            ends = range(first, last + 1)
            late = [k for k in ends if pieces[k][1] - start >= limit * 2 // 3] or ends
            last = max(late, key=lambda k: (pieces[k + 1][0] - pieces[k][1], k))
        chunks.append(Chunk(start, pieces[last][1]))
        first = last + 1
    return chunks


def _split(start: int, end: int, limit: int, audio: np.ndarray | None, sample_rate: int) -> list[tuple[int, int]]:
    if end - start <= limit:
        return [(start, end)]
    if audio is None:
        count = -(-(end - start) // limit)
        bounds = [start + (end - start) * i // count for i in range(count + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))
    pieces = []
    while end - start > limit:
        cut = _quietest(audio, start + limit - int(limit * QUIET_SEARCH), start + limit, sample_rate)
        pieces.append((start, cut))
        start = cut
    return [*pieces, (start, end)]


def _quietest(audio: np.ndarray, low: int, high: int, sample_rate: int) -> int:
    """The sample in [low, high] at the centre of the 100 ms with the least energy."""
    frame = max(1, int(sample_rate * _ENERGY_FRAME_S))
    count = (high - low) // frame
    if count < _ENERGY_SPAN_FRAMES:
        return high
    frames = audio[low : low + count * frame].reshape(count, frame)
    energy = np.square(frames, dtype=np.float64).mean(axis=1)
    # "valid" so that no window is averaged with zero padding, which would make the edges look quiet.
    windowed = np.convolve(energy, np.ones(_ENERGY_SPAN_FRAMES), mode="valid")
    return low + (int(np.argmin(windowed)) + _ENERGY_SPAN_FRAMES // 2) * frame


def stitch(
    chunks: Sequence[Chunk], transcripts: Sequence[Transcript], duration_s: float, sample_rate: int = SAMPLE_RATE
) -> Transcript:
    """One transcript for the whole file from each chunk's transcript, its times shifted to the file's clock.

    ``num_tokens`` and each ``timings`` key are summed over the chunks; chunks decoded in one batch each carry the
    whole batch's times (see ``Transcript``), so a caller that batched reports its own wall time instead.
    """
    if len(chunks) != len(transcripts):
        raise ValueError(f"{len(chunks)} chunks but {len(transcripts)} transcripts")
    language = next((t.language for t in transcripts if t.language is not None), None)
    segments: list[Segment] = []
    texts: list[str] = []
    timings: dict[str, float] = {}
    for chunk, transcript in zip(chunks, transcripts, strict=True):
        offset = chunk.start / sample_rate
        text = transcript.text.strip()
        if text:
            texts.append(text)
        pieces = transcript.segments
        if not pieces and text:
            pieces = [Segment(0, 0.0, (chunk.end - chunk.start) / sample_rate, text)]
        for piece in pieces:
            words = tuple(
                Word(_shift(w.start, offset), _shift(w.end, offset), w.word, w.probability) for w in piece.words
            )
            start, end = _shift(piece.start, offset), _shift(piece.end, offset)
            segments.append(Segment(len(segments), start, end, piece.text, words))
        for key, seconds in transcript.timings.items():
            timings[key] = timings.get(key, 0.0) + seconds
    return Transcript(
        text=word_separator(language).join(texts),
        language=language,
        duration_s=duration_s,
        segments=segments,
        num_tokens=sum(t.num_tokens for t in transcripts),
        timings=timings,
    )


def word_separator(language: str | None) -> str:
    """What goes between the texts of two chunks: nothing for languages written without spaces."""
    return "" if is_unspaced(language) else " "


def _shift(seconds: float, offset: float) -> float:
    return round(seconds + offset, 3)  # milliseconds, as the engines round their times
