"""Rendering a ``Transcript`` in the OpenAI audio API's response formats: json, text, srt, vtt, verbose_json."""

from __future__ import annotations

import json
from typing import Any, Literal

from asrforge.transcript import Transcript

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "diarized_json": "application/json",
}


def timestamp(seconds: float, decimal: str) -> str:
    """``HH:MM:SS,mmm`` (SRT, decimal ",") or ``HH:MM:SS.mmm`` (WebVTT, decimal ".")."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    """(start, end, text) per subtitle cue: the transcript's segments, or one cue when it has none."""
    if transcript.segments:
        return [(s.start, s.end, s.text.strip()) for s in transcript.segments if s.text.strip()]
    return [(0.0, transcript.duration_s, transcript.text)] if transcript.text else []


def to_srt(transcript: Transcript) -> str:
    blocks = [
        f"{index}\n{timestamp(start, ',')} --> {timestamp(end, ',')}\n{text}\n"
        for index, (start, end, text) in enumerate(cues(transcript), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    blocks = [f"{timestamp(start, '.')} --> {timestamp(end, '.')}\n{text}\n" for start, end, text in cues(transcript)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_verbose_json(transcript: Transcript, task: str = "transcribe") -> dict[str, Any]:
    """OpenAI's verbose_json shape: task, language, duration, text, segments (and words when present)."""
    body: dict[str, Any] = {
        "task": task,
        "language": transcript.language,
        "duration": round(transcript.duration_s, 3),
        "text": transcript.text,
        "segments": [
            {"id": s.id, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text}
            for s in transcript.segments
        ],
    }
    words = [w for s in transcript.segments for w in s.words]
    if words:
        body["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in words]
    return body


def render(transcript: Transcript, response_format: str, task: str = "transcribe") -> str:
    """The response body for ``response_format`` as a string."""
    if response_format == "text":
        return transcript.text + "\n"
    if response_format == "json":
        return json.dumps({"text": transcript.text}, ensure_ascii=False)
    if response_format == "verbose_json":
        return json.dumps(to_verbose_json(transcript, task), ensure_ascii=False)
    if response_format == "srt":
        return to_srt(transcript)
    if response_format == "vtt":
        return to_vtt(transcript)
    raise ValueError(f"unknown response_format {response_format!r} (one of {', '.join(RESPONSE_FORMATS)})")
