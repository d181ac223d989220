"""Timed transcripts into response bodies: SRT and WebVTT from laid-out cues, verbose_json with words and the
alignment used. The untimed formats stay with ``asrforge.formats``."""

from __future__ import annotations

import json

from asrforge.constants import is_unspaced
from asrforge.formats import render, timestamp, to_verbose_json
from asrforge.subtitles.alignment import Alignment
from asrforge.subtitles.layout import Cue, layout_cues
from asrforge.subtitles.options import LayoutOptions
from asrforge.transcript import Transcript

SUBTITLE_FORMATS: tuple[str, ...] = ("srt", "vtt")


def subtitle_cues(transcript: Transcript, layout: LayoutOptions | None = None) -> list[Cue]:
    """The cues of a transcript whose segments carry timed words."""
    spaced = not is_unspaced(transcript.language)
    return layout_cues([w for s in transcript.segments for w in s.words], layout, spaced=spaced)


def cues_to_srt(cues: list[Cue]) -> str:
    return "\n".join(
        f"{index}\n{timestamp(cue.start, ',')} --> {timestamp(cue.end, ',')}\n{cue.text}\n"
        for index, cue in enumerate(cues, start=1)
    )


def cues_to_vtt(cues: list[Cue]) -> str:
    # "-->" may not appear in a WebVTT cue's text; SRT has no such rule.
    blocks = [f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{c.text.replace('-->', '→')}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render_timed(
    transcript: Transcript,
    alignment: Alignment,
    response_format: str,
    task: str = "transcribe",
    layout: LayoutOptions | None = None,
) -> str:
    """The body for ``response_format`` of a transcript timed by ``alignment``."""
    if response_format == "srt":
        return cues_to_srt(subtitle_cues(transcript, layout))
    if response_format == "vtt":
        return cues_to_vtt(subtitle_cues(transcript, layout))
    if response_format == "verbose_json":
        return json.dumps({**to_verbose_json(transcript, task), "alignment": alignment.to_dict()}, ensure_ascii=False)
    return render(transcript, response_format, task)
