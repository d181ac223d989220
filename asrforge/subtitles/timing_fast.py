"""``subtitles.mode=fast``: word times without any extra model.

A segment's words are laid end to end over the speech inside the segment, each taking time in proportion to its
length in characters (a good proxy for spoken duration in alphabetic scripts; syllable counters need a per-language
dictionary). The segment is the decoder's (Whisper's timestamp tokens); its speech is where Silero VAD heard speech
inside it, so leading and trailing silence and the pauses between sentences get no words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from asrforge.constants import SAMPLE_RATE, is_unspaced
from asrforge.transcript import Segment, Transcript, Word

_MIN_WEIGHT = 1


def unpadded_speech(
    spans: Sequence[tuple[int, int]], pad_ms: float, sample_rate: int = SAMPLE_RATE
) -> list[tuple[float, float]]:
    """Speech spans in seconds with Silero's ``speech_pad_ms`` taken off again (the server pads them for chunking)."""
    pad = pad_ms / 1000
    result = []
    for start, end in spans:
        start_s, end_s = start / sample_rate, end / sample_rate
        # A span that starts at 0 was clipped there: its speech may begin anywhere in the first ``pad``.
        lead = pad if start > 0 else 0.0
        if end_s - start_s > lead + pad:
            start_s, end_s = start_s + lead, end_s - pad
        else:  # a span no longer than its padding: keep its middle instant
            start_s = end_s = (start_s + end_s) / 2
        result.append((start_s, end_s))
    return result


def split_words(text: str, language: str | None) -> list[str]:
    """The words of ``text`` as subtitles show them: by spaces, or by character for unspaced scripts (punctuation
    stays with the character before it)."""
    if not is_unspaced(language):
        return text.split()
    words: list[str] = []
    for char in text:
        if char.isspace():
            continue
        if words and not char.isalnum():
            words[-1] += char
        else:
            words.append(char)
    return words


def heuristic_words(transcript: Transcript, speech: Sequence[tuple[float, float]] = ()) -> Transcript:
    """A copy of ``transcript`` whose segments carry words timed by character length over the segment's speech.

    ``speech`` is (start, end) seconds of detected speech on the transcript's clock; empty = the whole segment.
    """
    spaced = not is_unspaced(transcript.language)
    segments = transcript.segments or (
        [Segment(0, 0.0, transcript.duration_s, transcript.text)] if transcript.text.strip() else []
    )
    timed = []
    for segment in segments:
        texts = split_words(segment.text, transcript.language)
        intervals = _speech_inside(segment.start, segment.end, speech)
        words = tuple(_place(texts, intervals, spaced))
        timed.append(replace(segment, words=words))
    return replace(transcript, segments=timed)


def _speech_inside(start: float, end: float, speech: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    inside = [(max(start, s), min(end, e)) for s, e in speech if min(end, e) > max(start, s)]
    return inside or [(start, end)]


def _place(texts: list[str], intervals: list[tuple[float, float]], spaced: bool) -> list[Word]:
    """Words end to end over the speech intervals by character weight; a word that would straddle a pause goes
    wholly to the interval holding its middle, so pauses stay between words (where the layout can cut)."""
    weights = [max(_MIN_WEIGHT, sum(c.isalnum() for c in text)) for text in texts]
    total = sum(weights)
    lengths = [e - s for s, e in intervals]
    speech_s = sum(lengths)
    owner: list[int] = []
    done = 0.0
    for weight in weights:
        middle = speech_s * (done + weight / 2) / total
        done += weight
        index, passed = 0, 0.0
        while index < len(intervals) - 1 and middle > passed + lengths[index]:
            passed += lengths[index]
            index += 1
        owner.append(index)
    words: list[Word] = []
    for index, (start, end) in enumerate(intervals):
        mine = [k for k, o in enumerate(owner) if o == index]
        share = sum(weights[k] for k in mine)
        cursor = start
        for k in mine:
            stop = cursor + (end - start) * weights[k] / share
            text = (" " + texts[k]) if spaced and k else texts[k]
            words.append(Word(round(cursor, 3), round(stop, 3), text))
            cursor = stop
    return words
