"""Repetition guard: catch decoding loops, re-decode the affected input with a repetition penalty, and cut what
still loops.

Whisper-style models fall into loops on noise, music and long silences; faster-whisper fights this with temperature
fallback on a gzip-compression-ratio trigger. An explicit n-gram loop detector (``repetition_loops``) triggers only on
real repetition and says exactly what to cut, and a greedy re-decode with a penalty keeps the output deterministic.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.optimizations.base import Plugin, Requirements, register
from asrforge.optimizations.repetition_loops import LoopRule, cut_loops, has_loop
from asrforge.transcript import Transcript


@register
@dataclass(frozen=True)
class RepetitionGuard(Plugin):
    name = "repetition_guard"
    order = 80
    requires = Requirements(engines=None)

    repetition_penalty: float = 1.3  # for the re-decode only; 1.0 skips re-decoding and just cuts
    no_repeat_ngram_size: int = 0
    max_period: int = 16
    min_repeats: int = 4
    min_units: int = 12

    @property
    def rule(self) -> LoopRule:
        return LoopRule(self.max_period, self.min_repeats, self.min_units)

    def apply(self, engine: BaseEngine) -> BaseEngine:
        engine.output_hooks.append(self.guard)
        return engine

    def guard(
        self, engine: BaseEngine, batch: Sequence[np.ndarray], options: DecodeOptions, transcripts: list[Transcript]
    ) -> list[Transcript]:
        looping = [index for index, transcript in enumerate(transcripts) if has_loop(transcript.text, self.rule)]
        if not looping:
            return transcripts
        started = time.perf_counter()
        redone: dict[int, Transcript] = {}
        if self.repetition_penalty != 1.0:
            retry = dataclasses.replace(
                options, repetition_penalty=self.repetition_penalty, no_repeat_ngram_size=self.no_repeat_ngram_size
            )
            redone = dict(zip(looping, engine.decode([batch[index] for index in looping], retry), strict=True))
        spent = time.perf_counter() - started
        out = list(transcripts)
        for index in looping:
            candidate = redone.get(index, transcripts[index])
            if has_loop(candidate.text, self.rule):
                candidate = self.cut(candidate)
            candidate.timings["repetition_guard_s"] = round(spent, 6)
            out[index] = candidate
        return out

    def cut(self, transcript: Transcript) -> Transcript:
        """The transcript with every loop reduced to one copy, across segment boundaries."""
        if not transcript.segments:
            return dataclasses.replace(transcript, text=cut_loops([transcript.text], self.rule)[0])
        texts = cut_loops([segment.text for segment in transcript.segments], self.rule)
        segments = [
            dataclasses.replace(segment, text=text)
            for segment, text in zip(transcript.segments, texts, strict=True)
            if text
        ]
        return dataclasses.replace(transcript, text=" ".join(text for text in texts if text), segments=segments)
