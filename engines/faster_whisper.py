"""faster-whisper (CTranslate2): the peer baseline row, run as shipped, never optimised.

It decodes with the same ``DecodeOptions`` as the ``whisper`` engine (timestamps predicted, its default; beam size,
temperature ladder, thresholds and previous-text conditioning passed through), so the two rows of one decoding policy
differ in runtime only. The options' defaults are greedy without fallback; faster-whisper's own default policy is
``conf/decode/fallback.yaml``. A batch is decoded clip
by clip: ``BatchedInferencePipeline`` needs VAD chunks and decodes without timestamps, which changes the transcript.
``faster_whisper`` (and so CTranslate2) is imported when the engine is built, not with this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from asrforge.constants import SAMPLE_RATE
from asrforge.cpu import cpu_quota
from asrforge.engines.base import BaseEngine, Capabilities, DecodeOptions, EngineConfig
from asrforge.engines.whisper_ct2 import PRESETS, ct2_model_dir
from asrforge.timing import StageTimer
from asrforge.transcript import Segment, Transcript, Word

WINDOW_S = 30.0


@dataclass(frozen=True)
class FasterWhisperConfig(EngineConfig):
    """``dtype`` is CTranslate2's compute type ("int8", "float32", "int8_float16", ...); "auto" is int8 on CPU."""

    engine: ClassVar[str] = "faster_whisper"
    model: str = "tiny.en"
    cpu_threads: int = 0  # 0 = the CPU quota of this process (CTranslate2's own default oversubscribes containers)

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "float16" if self.resolved_device().startswith("cuda") else "int8"


class FasterWhisperEngine(BaseEngine):
    name = "faster_whisper"

    def __init__(self, config: FasterWhisperConfig):
        from faster_whisper import WhisperModel

        super().__init__(config)
        self.config: FasterWhisperConfig = config
        path = str(ct2_model_dir(config.model)) if config.model in PRESETS else config.model
        device, _, index = self.device.partition(":")
        self.whisper = WhisperModel(
            path,
            device=device,
            device_index=int(index or 0),
            compute_type=self.dtype,
            cpu_threads=config.cpu_threads or cpu_quota(),
            local_files_only=True,
        )
        self.eot = self.whisper.hf_tokenizer.token_to_id("<|endoftext|>")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            languages=frozenset(self.whisper.supported_languages),
            translate=self.whisper.model.is_multilingual,
            word_timestamps=True,
            window_s=WINDOW_S,
        )

    def decode(self, batch: Sequence[np.ndarray], options: DecodeOptions) -> list[Transcript]:
        return [self.decode_one(np.asarray(audio, dtype=np.float32), options) for audio in batch]

    def decode_one(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        started = time.perf_counter()
        timer = StageTimer(self.device)
        with timer.stage("decode_s"):
            # transcribe() returns a lazy generator: the decoding happens while it is consumed.
            raw_segments, info = self.whisper.transcribe(
                audio,
                language=options.language,
                task=options.task,
                beam_size=options.beam_size,
                patience=options.patience,
                length_penalty=1.0 if options.length_penalty is None else options.length_penalty,
                temperature=list(options.temperatures),
                compression_ratio_threshold=options.compression_ratio_threshold,
                log_prob_threshold=options.log_prob_threshold,
                no_speech_threshold=options.no_speech_threshold,
                condition_on_previous_text=options.condition_on_previous_text,
                initial_prompt=options.prompt or None,
                repetition_penalty=options.repetition_penalty,
                no_repeat_ngram_size=options.no_repeat_ngram_size,
                max_new_tokens=options.max_new_tokens,
                word_timestamps=options.word_timestamps,
            )
            raw_segments = list(raw_segments)
        duration = len(audio) / SAMPLE_RATE
        segments = [
            Segment(
                id=index,
                start=round(min(raw.start, duration), 3),
                end=round(min(raw.end, duration), 3),
                text=raw.text.strip(),
                words=tuple(Word(w.start, w.end, w.word, w.probability) for w in raw.words or ()),
            )
            for index, raw in enumerate(raw_segments)
        ]
        return Transcript(
            text="".join(raw.text for raw in raw_segments).strip(),
            language=info.language,
            duration_s=duration,
            segments=segments,
            num_tokens=sum(token < self.eot for raw in raw_segments for token in raw.tokens),
            timings=timer.report(time.perf_counter() - started),
        )
