"""Qwen3-ForcedAligner: word start/end times for a known transcript (transformers' ``Qwen3ASRForTokenClassification``).

The aligner is a separate checkpoint (Qwen/Qwen3-ForcedAligner-0.6B); it reads the audio and the transcript's words,
each followed by ``<timestamp>`` markers, and classifies every marker into a time bin. Its weights are not on PyPI,
so the server runs it only when ``subtitles.qwen3_aligner`` names a local directory, in transformers' layout or the
original release's (converted once on load, engines/qwen3_asr_convert.py).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from asrforge.constants import SAMPLE_RATE
from asrforge.transcript import Transcript, Word


class Qwen3ForcedAligner:
    def __init__(self, path: str, device: str = "cpu"):
        from transformers import Qwen3ASRForTokenClassification, Qwen3ASRProcessor

        from asrforge.engines.qwen3_asr_convert import hf_checkpoint
        from asrforge.engines.weights import checkpoint_id

        if not Path(path).is_dir():
            raise OSError(f"no such directory: {path}")
        self.weights = checkpoint_id(path)  # what the subtitle response and records name
        checkpoint = hf_checkpoint(path)  # the original release layout is converted once, cached
        self.processor = Qwen3ASRProcessor.from_pretrained(checkpoint)
        self.model = Qwen3ASRForTokenClassification.from_pretrained(checkpoint).to(device).eval()
        self.device = device

    def align(self, transcript: Transcript, audio: np.ndarray) -> Transcript:
        """``transcript`` as one segment per input segment, with each word's times from the aligner."""
        inputs, word_lists = self.processor.prepare_forced_aligner_inputs(
            audio=np.asarray(audio, dtype=np.float32), transcript=transcript.text, language=transcript.language
        )
        inputs = inputs.to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        items = self.processor.decode_forced_alignment(
            logits, inputs["input_ids"], word_lists, self.model.config.timestamp_token_id
        )[0]
        limit = len(audio) / SAMPLE_RATE
        words = [
            Word(min(i["start_time"], limit), min(max(i["end_time"], i["start_time"]), limit), i["text"]) for i in items
        ]
        return _into_segments(transcript, words)


def _into_segments(transcript: Transcript, words: list[Word]) -> Transcript:
    """Each aligned word goes to the segment whose span holds its start (the last one that has begun)."""
    segments = list(transcript.segments)
    buckets: list[list[Word]] = [[] for _ in segments]
    for word in words:
        index = max((k for k, s in enumerate(segments) if s.start <= word.start), default=0)
        buckets[index].append(word)
    return replace(transcript, segments=[replace(s, words=tuple(b)) for s, b in zip(segments, buckets, strict=True)])


@functools.cache
def forced_aligner(path: str) -> Qwen3ForcedAligner:
    """One loaded aligner per checkpoint directory (loading takes seconds; aligning a clip, a forward pass)."""
    return Qwen3ForcedAligner(path)
