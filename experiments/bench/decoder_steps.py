"""Decoder milliseconds per token, timed from ``generate``'s own streamer callbacks, prefill left out.

``generate`` hands the streamer the prompt once, then each step's new tokens, and with a CUDA model it has just
waited for the step to finish (``tokens.cpu()`` and its stop check both synchronise), so the time between two
consecutive hand-overs is one decoder step as the caller sees it: kernels, launches and the sampling glue. The
first interval, prompt to first token, is the prefill (audio encoder and the prompt's forward) and is not counted.
One step advances every sequence of the batch by a token, so at batch size B this is ms per step, which is what the
weight-read floor bounds (``bandwidth_floor``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from transformers.generation.streamers import BaseStreamer


class DecoderSteps(BaseStreamer):
    """Accumulates decode-step time and tokens per sequence over every ``generate`` call it is passed to."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.seconds = 0.0
        self.tokens = 0
        self._last: float | None = None
        self._prompt_pending = True

    def put(self, value: torch.Tensor) -> None:
        now = self.clock()
        if self._prompt_pending:
            self._prompt_pending = False
            return
        if self._last is not None:
            # Assisted decoding hands over several tokens per sequence at once (batch, n); plain steps one (batch,).
            self.tokens += value.shape[-1] if value.dim() > 1 else 1
            self.seconds += now - self._last
        self._last = now

    def end(self) -> None:
        self._last = None
        self._prompt_pending = True

    def reset(self) -> None:
        self.seconds, self.tokens = 0.0, 0
        self.end()

    @property
    def ms_per_token(self) -> float | None:
        return 1000.0 * self.seconds / self.tokens if self.tokens else None
