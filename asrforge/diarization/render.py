"""Speaker-attributed transcripts as response bodies: OpenAI's ``diarized_json``, and SRT/WebVTT whose cues never
span two speakers (SRT: a ``Name: `` prefix; WebVTT: a ``<v Name>`` voice span)."""

from __future__ import annotations

import json
from typing import Any

from asrforge.constants import UNSPACED_LANGUAGES
from asrforge.subtitles.layout import Cue, layout_cues
from asrforge.subtitles.options import LayoutOptions
from asrforge.subtitles.render import cues_to_srt, cues_to_vtt
from asrforge.transcript import Transcript

DIARIZED_FORMATS: tuple[str, ...] = ("diarized_json", "srt", "vtt")


def diarized_segments(transcript: Transcript) -> list[dict[str, Any]]:
    return [
        {
            "type": "transcript.text.segment",
            "id": f"seg_{s.id}",
            "speaker": s.speaker or "A",
            "start": round(s.start, 3),
            "end": round(s.end, 3),
            "text": s.text.strip(),
        }
        for s in transcript.segments
    ]


def to_diarized_json(transcript: Transcript) -> dict[str, Any]:
    """OpenAI's ``TranscriptionDiarized``: task, duration, text, segments with speakers, usage (audio seconds)."""
    return {
        "task": "transcribe",
        "duration": round(transcript.duration_s, 3),
        "text": transcript.text,
        "segments": diarized_segments(transcript),
        "usage": {"type": "duration", "seconds": round(transcript.duration_s, 3)},
    }


def speaker_cues(transcript: Transcript, layout: LayoutOptions | None = None) -> list[tuple[str, Cue]]:
    """(speaker, cue) in order: each speaker segment laid out on its own, so a cue holds one speaker's words."""
    spaced = (transcript.language or "").split("-")[0] not in UNSPACED_LANGUAGES
    return [(s.speaker or "A", cue) for s in transcript.segments for cue in layout_cues(s.words, layout, spaced=spaced)]


def render_diarized(transcript: Transcript, response_format: str, layout: LayoutOptions | None = None) -> str:
    """The body of a diarized transcript (segments carry speakers and timed words) in ``response_format``."""
    if response_format == "diarized_json":
        return json.dumps(to_diarized_json(transcript), ensure_ascii=False)
    if response_format == "srt":
        cues = [_prefixed(cue, f"{speaker}: ") for speaker, cue in speaker_cues(transcript, layout)]
        return cues_to_srt(cues)
    if response_format == "vtt":
        cues = [_prefixed(cue, f"<v {_vtt_name(speaker)}>") for speaker, cue in speaker_cues(transcript, layout)]
        return cues_to_vtt(cues)
    raise ValueError(f"no speaker rendering for {response_format!r} (one of {', '.join(DIARIZED_FORMATS)})")


def _prefixed(cue: Cue, prefix: str) -> Cue:
    return Cue(cue.start, cue.end, (prefix + cue.lines[0], *cue.lines[1:])) if cue.lines else cue


def _vtt_name(name: str) -> str:
    # A WebVTT voice annotation ends at ">", and "&"/"<" would open an entity or a tag.
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
