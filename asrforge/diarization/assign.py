"""Speaker-attributed transcript: each word goes to the speaker who talks most during it, and each segment is cut
where the speaker changes between its words, so no segment spans two speakers. A segment without timed words goes
whole to the speaker who talks most during it."""

from __future__ import annotations

from dataclasses import replace

from asrforge.diarization.turns import Diarization
from asrforge.transcript import Segment, Transcript, Word


def attribute_speakers(transcript: Transcript, diarization: Diarization) -> Transcript:
    """``transcript`` with every segment carrying a ``speaker``, segments split at speaker changes, renumbered."""
    segments: list[Segment] = []
    for segment in transcript.segments:
        if not segment.text.strip():
            continue
        if not segment.words:
            segments.append(replace(segment, speaker=diarization.speaker_at(segment.start, segment.end)))
            continue
        for speaker, words in _runs(segment.words, diarization):
            segments.append(
                Segment(
                    id=0,
                    start=words[0].start,
                    end=words[-1].end,
                    text=_join(words, segment.text),
                    words=tuple(words),
                    speaker=speaker,
                )
            )
    numbered = [replace(s, id=index) for index, s in enumerate(segments)]
    return replace(transcript, segments=numbered)


def _runs(words: tuple[Word, ...], diarization: Diarization) -> list[tuple[str | None, list[Word]]]:
    runs: list[tuple[str | None, list[Word]]] = []
    for word in words:
        speaker = diarization.speaker_at(word.start, word.end)
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(word)
        else:
            runs.append((speaker, [word]))
    return runs


def _join(words: list[Word], segment_text: str) -> str:
    """The words' text as the engine spelled it: Whisper's words carry their own leading space; words split by
    spaces (heuristic timing) do not, and are re-joined with one."""
    text = "".join(w.word for w in words)
    if any(w.word[:1].isspace() for w in words[1:]) or " " not in segment_text.strip():
        return text.strip()
    return " ".join(w.word.strip() for w in words)
