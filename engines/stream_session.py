"""Incremental decoding of one live stream: audio arrives in chunks, each chunk returns the transcript so far.

Two sessions share one interface (``feed`` / ``pause`` / ``finish``):

- ``RefeedSession`` (the baseline, any engine): every chunk decodes all audio received so far from scratch, as
  upstream Qwen3-ASR streaming does; its cost grows with the stream.
- ``IncrementalSession`` (engines with an ``IncrementalDecoder``): decodes only the *open window*, the audio since
  the last commit, and forces the window's *fixed* tokens as the decoder's prefix.

When text is fixed: a token is fixed once ``stable_chunks`` consecutive hypotheses agree on it (local agreement,
asrforge/agreement.py, as whisper_streaming does); fixed tokens are never taken back and are forced as the prefix of
later hypotheses, so their KV cache can be kept (``kv_reuse``) and the cache is rolled back (``DynamicCache.crop``) to
the end of the fixed prefix after each hypothesis. The window is *committed* at a pause the caller's VAD reports, or
when it reaches ``max_window_s``: its text joins the committed transcript and its audio and caches are dropped, so the
cost of a chunk stays bounded however long the stream runs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from asrforge.agreement import LocalAgreement
from asrforge.constants import SAMPLE_RATE

if TYPE_CHECKING:
    from transformers import Cache

    from asrforge.engines.base import DecodeOptions


@dataclass(frozen=True)
class StreamSettings:
    """What the streaming plugins switch on; an engine starts with all off (the re-feeding baseline)."""

    kv_reuse: bool = False  # keep decoder/encoder caches of the fixed prefix across chunks
    causal_encoder: bool = False  # chunk-causal encoder with cached past blocks
    stable_chunks: int = 2  # a token is fixed when this many consecutive hypotheses agree on it
    max_window_s: float = 24.0  # commit the open window when it grows this long without a pause
    # Whisper's full-context encoder: encode the window's audio plus this much padding (rounded up to whole seconds)
    # instead of the padded 30 s. None: the full window, as Whisper was trained.
    window_margin_s: float | None = None
    # dual_model: the small model's incremental decoder makes the partials; the engine's own model the finals.
    partial_decoder: Callable[[DecodeOptions], IncrementalDecoder] | None = field(default=None, compare=False)

    @property
    def incremental(self) -> bool:
        return self.kv_reuse or self.causal_encoder or self.partial_decoder is not None


@dataclass(frozen=True)
class StreamUpdate:
    """The transcript after one chunk: ``committed`` + ``fixed`` never change; ``tentative`` may."""

    committed: str  # text of committed windows (finals)
    fixed: str  # fixed text of the open window
    tentative: str  # the rest of the open window's current hypothesis
    latency_s: float  # compute time of this update

    @property
    def stable(self) -> str:
        """The text no later update takes back (with dual_model, until a final replaces the open window's part)."""
        return _join(self.committed, self.fixed)

    @property
    def text(self) -> str:
        return _join(self.committed, self.fixed + self.tentative)


class IncrementalDecoder(ABC):
    """One stream's model state for the open window (engine-specific: caches live here)."""

    @abstractmethod
    def hypothesis(self, audio: np.ndarray, fixed: list[int]) -> list[int]:
        """Text tokens for the open window's ``audio`` (all of it so far), starting with the forced ``fixed``."""

    @abstractmethod
    def text(self, tokens: list[int]) -> str: ...

    @abstractmethod
    def reset(self) -> None:
        """The window was committed: drop every cache."""


class StreamSession(ABC):
    @abstractmethod
    def feed(self, samples: np.ndarray) -> StreamUpdate:
        """Append 16 kHz float32 samples and return the transcript so far."""

    def pause(self) -> StreamUpdate:
        """The caller's VAD heard a pause: text before it is final (no-op where nothing is windowed)."""
        return self.update(0.0)

    @abstractmethod
    def finish(self) -> str:
        """End of input: the whole stream's final transcript."""

    @abstractmethod
    def update(self, latency_s: float) -> StreamUpdate: ...


class RefeedSession(StreamSession):
    """The baseline: decode everything received so far on every chunk."""

    def __init__(self, transcribe: Callable[[np.ndarray], str]):
        self._transcribe = transcribe
        self._chunks: list[np.ndarray] = []
        self._text = ""

    def feed(self, samples: np.ndarray) -> StreamUpdate:
        started = time.perf_counter()
        self._chunks.append(np.asarray(samples, dtype=np.float32))
        self._text = self._transcribe(np.concatenate(self._chunks))
        return self.update(time.perf_counter() - started)

    def update(self, latency_s: float) -> StreamUpdate:
        return StreamUpdate(committed="", fixed="", tentative=self._text, latency_s=latency_s)

    def finish(self) -> str:
        return self._text


class IncrementalSession(StreamSession):
    """Decodes the open window only; ``final`` (dual_model) gives a committed window's text from another model."""

    def __init__(
        self,
        decoder: IncrementalDecoder,
        settings: StreamSettings,
        final: Callable[[np.ndarray], str] | None = None,
    ):
        if settings.stable_chunks < 1:
            raise ValueError("stable_chunks must be at least 1")
        self.decoder = decoder
        self.settings = settings
        self._final = final
        self._committed: list[str] = []
        self._window: list[np.ndarray] = []
        self._window_samples = 0
        self._agreement: LocalAgreement[int] = LocalAgreement(settings.stable_chunks)  # over this window's tokens

    def feed(self, samples: np.ndarray) -> StreamUpdate:
        started = time.perf_counter()
        samples = np.asarray(samples, dtype=np.float32)
        self._window.append(samples)
        self._window_samples += samples.size
        fixed = self._agreement.fixed
        tokens = self.decoder.hypothesis(np.concatenate(self._window), list(fixed))
        if tokens[: len(fixed)] != fixed:
            raise RuntimeError("the decoder did not keep the forced fixed prefix")
        self._agreement.add(tokens)
        if self._window_samples >= self.settings.max_window_s * SAMPLE_RATE:
            self._commit()
        return self.update(time.perf_counter() - started)

    def pause(self) -> StreamUpdate:
        started = time.perf_counter()
        self._commit()
        return self.update(time.perf_counter() - started)

    def finish(self) -> str:
        self._commit()
        return _join(*self._committed)

    def update(self, latency_s: float) -> StreamUpdate:
        latest, fixed_tokens = self._agreement.latest, self._agreement.fixed
        fixed = self.decoder.text(fixed_tokens)
        whole = self.decoder.text(latest)
        # A token boundary need not be a character boundary (byte-level tokens): then decode the tail alone.
        tentative = whole[len(fixed) :] if whole.startswith(fixed) else self.decoder.text(latest[len(fixed_tokens) :])
        return StreamUpdate(committed=_join(*self._committed), fixed=fixed, tentative=tentative, latency_s=latency_s)

    def _commit(self) -> None:
        if self._window_samples:
            if self._final is not None:
                text = self._final(np.concatenate(self._window))
            else:
                text = self.decoder.text(self._agreement.latest)
            if text.strip():
                self._committed.append(text.strip())
        self._window, self._window_samples = [], 0
        self._agreement.reset()
        self.decoder.reset()


def rollback(cache: Cache, length: int) -> None:
    """Crop ``cache`` to its first ``length`` positions (transformers 5 crops by a negative count to remove)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _join(*texts: str) -> str:
    return " ".join(text.strip() for text in texts if text.strip())
