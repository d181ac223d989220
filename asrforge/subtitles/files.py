"""Subtitles for files on disk (``asrforge transcribe --format srt|vtt``): the server's timing, without a server."""

from __future__ import annotations

from pathlib import Path

from asrforge.audio import load_audio
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.subtitles.alignment import Alignment, apply_timing, plan_timing
from asrforge.subtitles.options import SubtitleOptions
from asrforge.subtitles.render import render_timed
from asrforge.subtitles.timing_fast import unpadded_speech
from asrforge.transcript import Transcript
from asrforge.vad import SpeechDetector, VADOptions


class FileSubtitler:
    """Decide the timing before decoding (``options``: what to decode with), then time and render each file."""

    def __init__(self, engine: BaseEngine, options: DecodeOptions, subtitles: SubtitleOptions):
        self.plan = plan_timing(engine, options, subtitles)
        self.subtitles = subtitles
        self.vad = VADOptions()
        self.detector = SpeechDetector(self.vad)

    @property
    def options(self) -> DecodeOptions:
        return self.plan.options

    def render(self, path: Path, transcript: Transcript, response_format: str, task: str) -> tuple[str, Alignment]:
        """The body for ``path``'s transcript, and how its words were timed."""
        audio = load_audio(path)
        speech = unpadded_speech(self.detector.speech_spans(audio), self.vad.speech_pad_ms)
        timed, alignment = apply_timing(self.plan, transcript, audio, speech, self.subtitles.qwen3_aligner)
        return render_timed(timed, alignment, response_format, task, self.subtitles.layout), alignment
