"""A transcript in another language with the same timing: its segments are translated in batches, each batch sent
with its neighbours as context, and each translation keeps the start and end of the segment it came from."""

from __future__ import annotations

from collections.abc import Iterator

from asrforge.chunking import word_separator
from asrforge.transcript import Segment, Transcript
from asrforge.translation.base import TranslationRequest, Translator, TranslatorReplyError


def requests_for(
    texts: list[str], target: str, source: str | None, batch_size: int, context_segments: int
) -> Iterator[tuple[int, TranslationRequest]]:
    """(index of the first text, request) for each batch of ``texts``, with up to ``context_segments`` neighbours."""
    if batch_size < 1 or context_segments < 0:
        raise ValueError("batch_size must be >= 1 and context_segments >= 0")
    for start in range(0, len(texts), batch_size):
        end = min(start + batch_size, len(texts))
        yield (
            start,
            TranslationRequest(
                texts=tuple(texts[start:end]),
                target=target,
                source=source,
                before=tuple(texts[max(0, start - context_segments) : start]),
                after=tuple(texts[end : end + context_segments]),
            ),
        )


def translate_transcript(
    transcript: Transcript, translator: Translator, target: str, batch_size: int = 8, context_segments: int = 2
) -> Transcript:
    """``transcript`` in ``target``: segment for segment, same start/end. Word timings are dropped (a translation's
    words have none); a transcript without segments is translated as one piece spanning the audio."""
    segments = [s for s in transcript.segments if s.text.strip()] or (
        [Segment(0, 0.0, transcript.duration_s, transcript.text)] if transcript.text.strip() else []
    )
    texts = [s.text.strip() for s in segments]
    translated: list[str] = [""] * len(texts)
    for start, request in requests_for(texts, target, transcript.language, batch_size, context_segments):
        pieces = translator.translate(request)
        if len(pieces) != len(request.texts):
            raise TranslatorReplyError(
                f"{translator.name} returned {len(pieces)} translations for {len(request.texts)} segments"
            )
        translated[start : start + len(pieces)] = [piece.strip() for piece in pieces]
    return Transcript(
        text=word_separator(target).join(text for text in translated if text),
        language=target,
        duration_s=transcript.duration_s,
        segments=[
            Segment(i, s.start, s.end, text) for i, (s, text) in enumerate(zip(segments, translated, strict=True))
        ],
        num_tokens=transcript.num_tokens,
        timings=dict(transcript.timings),
    )
