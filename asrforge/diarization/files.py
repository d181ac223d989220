"""Diarized transcripts of whole recordings without a server (``asrforge transcribe --diarize``, the diarization
study): the transcription pipeline (asrforge/pipeline.py) plans and decodes on one Silero pass, whose speech spans
also feed the word timing and the speaker turns; then speakers are attributed."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from asrforge.diarization.assign import attribute_speakers
from asrforge.diarization.options import DiarizationOptions
from asrforge.diarization.turns import Diarization, diarize
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.pipeline import Pipeline, decode_pieces
from asrforge.subtitles.alignment import apply_timing, plan_timing
from asrforge.subtitles.options import SubtitleOptions
from asrforge.subtitles.timing_fast import unpadded_speech
from asrforge.transcript import Transcript
from asrforge.vad_options import VADOptions


class FileDiarizer:
    def __init__(
        self,
        engine: BaseEngine,
        options: DecodeOptions,
        subtitles: SubtitleOptions,
        diarization: DiarizationOptions = DiarizationOptions(),
        vad: VADOptions = VADOptions(),
    ):
        self.pipeline = Pipeline(engine, vad)
        self.options = options
        self.subtitles = diarization.timing(subtitles)
        self.plan = plan_timing(engine, options, self.subtitles)
        self.diarization = diarization

    def transcribe(self, audio: np.ndarray, references: Mapping[str, np.ndarray] | None = None) -> Transcript:
        """``audio``'s transcript with a speaker on every segment and no segment spanning two speakers."""
        return self.run(audio, references)[0]

    def run(
        self,
        audio: np.ndarray,
        references: Mapping[str, np.ndarray] | None = None,
        stages: dict[str, float] | None = None,
        speakers: bool = True,
    ) -> tuple[Transcript, Diarization | None]:
        """(transcript, diarization); ``speakers=False`` is the plain transcription of the same pipeline (decoded
        with the caller's options, no word timing, no diarization) for comparison. ``stages`` receives each
        stage's seconds (vad, decode, word timing, diarize)."""
        stages = {} if stages is None else stages
        clock = time.perf_counter()
        spans = self.pipeline.speech_spans(audio)
        plan = self.pipeline.plan(audio, spans)
        stages["vad_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        options = self.plan.options if speakers else self.options
        transcript = plan.join(decode_pieces(self.pipeline.engine, [plan], options, batch_size=1))
        stages["decode_s"] = time.perf_counter() - clock
        if not speakers:
            return transcript, None
        clock = time.perf_counter()
        speech = unpadded_speech(spans, self.pipeline.vad.speech_pad_ms)
        timed, _ = apply_timing(self.plan, transcript, audio, speech, self.subtitles.qwen3_aligner)
        stages["word_timing_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        found = diarize(audio, spans, self.diarization, references)
        attributed = attribute_speakers(timed, found)
        stages["diarize_s"] = time.perf_counter() - clock
        return attributed, found
