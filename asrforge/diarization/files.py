"""Diarized transcripts of whole recordings without a server (``asrforge transcribe --diarize``, the diarization
study): one Silero pass gives the chunks, the word timing's speech and the diarization's speech spans; chunks are
decoded and stitched; words are timed as the subtitles settings say; then speakers are attributed."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from asrforge.chunking import Chunk, plan_chunks, stitch
from asrforge.constants import SAMPLE_RATE
from asrforge.diarization.assign import attribute_speakers
from asrforge.diarization.options import DiarizationOptions
from asrforge.diarization.turns import diarize
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.subtitles.alignment import apply_timing, plan_timing
from asrforge.subtitles.options import SubtitleOptions
from asrforge.subtitles.timing_fast import unpadded_speech
from asrforge.transcript import Transcript
from asrforge.vad import SpeechDetector, VADOptions


class FileDiarizer:
    def __init__(
        self,
        engine: BaseEngine,
        options: DecodeOptions,
        subtitles: SubtitleOptions,
        diarization: DiarizationOptions = DiarizationOptions(),
        vad: VADOptions = VADOptions(),
    ):
        self.engine = engine
        self.subtitles = diarization.timing(subtitles)
        self.plan = plan_timing(engine, options, self.subtitles)
        self.diarization = diarization
        self.vad = vad
        self.detector = SpeechDetector(vad)

    def chunks(self, audio: np.ndarray, spans: list[tuple[int, int]]) -> list[Chunk]:
        window = self.engine.capabilities.window_s
        if audio.size <= window * SAMPLE_RATE:
            return [Chunk(0, audio.size)]
        return plan_chunks(spans, audio.size, window, SAMPLE_RATE, audio=audio)

    def transcribe(self, audio: np.ndarray, references: Mapping[str, np.ndarray] | None = None) -> Transcript:
        """``audio``'s transcript with a speaker on every segment and no segment spanning two speakers."""
        spans = self.detector.speech_spans(audio)
        chunks = self.chunks(audio, spans)
        pieces = [self.engine.transcribe([c.audio(audio)], self.plan.options)[0] for c in chunks]
        transcript = stitch(chunks, pieces, audio.size / SAMPLE_RATE, SAMPLE_RATE)
        speech = unpadded_speech(spans, self.vad.speech_pad_ms)
        timed, _ = apply_timing(self.plan, transcript, audio, speech, self.subtitles.qwen3_aligner)
        return attribute_speakers(timed, diarize(audio, spans, self.diarization, references))
