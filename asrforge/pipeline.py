"""The one way a file becomes a transcript: audio -> VAD chunks -> engine -> stitched ``Transcript``.

The CLI, the server and the benchmark harness all transcribe through a ``Pipeline``, so a long file gives one
transcript whichever way it comes in. Audio that fits the engine's window goes to the engine whole (no VAD); longer
audio is cut at silences (asrforge/chunking.py) and the chunks' transcripts are stitched on the file's clock.

The steps are public so that a caller that decodes elsewhere (the server's scheduler, which batches across requests)
runs the same plan and the same stitching around its own decode: ``needs_vad`` -> ``plan`` -> decode -> ``join``.
A stage that works on the speech spans (e.g. speaker turns) slots in between ``speech_spans`` and ``plan``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asrforge.audio import load_audio
from asrforge.chunking import Chunk, plan_chunks, stitch
from asrforge.constants import SAMPLE_RATE
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import AsrforgeError
from asrforge.transcript import Transcript
from asrforge.vad_options import VADOptions

if TYPE_CHECKING:
    from asrforge.vad import SpeechDetector

Spans = list[tuple[int, int]]


@dataclass
class Plan:
    """One file's audio and the pieces the engine decodes; ``join`` turns their transcripts into the file's."""

    samples: np.ndarray
    chunks: list[Chunk]
    spans: Spans | None = field(default=None, repr=False)  # the VAD's speech spans, when it ran

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE

    @property
    def whole(self) -> bool:
        """One piece that is the whole file: the engine's own transcript is the file's, untouched."""
        return len(self.chunks) == 1 and self.chunks[0] == Chunk(0, self.samples.size)

    def pieces(self) -> list[np.ndarray]:
        return [chunk.audio(self.samples) for chunk in self.chunks]

    def join(self, transcripts: Sequence[Transcript]) -> Transcript:
        if self.whole:
            return transcripts[0]
        return stitch(self.chunks, transcripts, self.duration_s, SAMPLE_RATE)


class Pipeline:
    """Chunking and stitching around one engine. Silero loads on the first file longer than the window."""

    def __init__(
        self,
        engine: BaseEngine,
        vad: VADOptions = VADOptions(),
        max_chunk_s: float | None = None,
        detector: SpeechDetector | None = None,
    ):
        self.engine = engine
        self.vad = vad
        self.max_chunk_s = max_chunk_s or engine.capabilities.window_s
        self._detector = detector
        self._detector_lock = threading.Lock()

    @property
    def detector(self) -> SpeechDetector:
        with self._detector_lock:
            if self._detector is None:
                from asrforge.vad import SpeechDetector  # imports torch's Silero: only when some audio needs it

                self._detector = SpeechDetector(self.vad)
            return self._detector

    def needs_vad(self, samples: np.ndarray, max_chunk_s: float | None = None) -> bool:
        """True when ``samples`` is longer than one chunk, so it must be cut at silences."""
        return samples.size > (max_chunk_s or self.max_chunk_s) * SAMPLE_RATE

    def speech_spans(self, samples: np.ndarray) -> Spans:
        """Silero's speech spans of ``samples`` (padded by ``vad.speech_pad_ms``)."""
        return self.detector.speech_spans(samples)

    def plan(self, samples: np.ndarray, spans: Spans | None = None, max_chunk_s: float | None = None) -> Plan:
        """The pieces to decode: the whole clip when it fits, else speech (``spans``, computed if not given) cut at
        silences into chunks of at most ``max_chunk_s`` (default: the engine's window)."""
        limit = max_chunk_s or self.max_chunk_s
        if not self.needs_vad(samples, limit):
            return Plan(samples, [Chunk(0, samples.size)])
        if spans is None:
            spans = self.speech_spans(samples)
        return Plan(samples, plan_chunks(spans, samples.size, limit, SAMPLE_RATE, audio=samples), spans)

    def transcribe(
        self, audio: Sequence[np.ndarray], options: DecodeOptions = DecodeOptions(), batch_size: int | None = None
    ) -> list[Transcript]:
        """One transcript per clip: every clip's pieces decoded ``batch_size`` at a time (default: all in one call),
        each clip's pieces stitched. Clips that fit the window go to the engine as they are, together."""
        plans = [self.plan(samples) for samples in audio]
        return join_all(plans, decode_pieces(self.engine, plans, options, batch_size))

    def transcribe_paths(
        self, paths: Iterable[Path], options: DecodeOptions = DecodeOptions(), batch_size: int = 1
    ) -> Iterator[tuple[Path, Transcript | AsrforgeError]]:
        """Yield (path, transcript) in input order; a file that cannot be read yields its error instead. Files are
        decoded ``batch_size`` pieces to a call (a long file is several pieces)."""
        pending: list[tuple[Path, Plan]] = []
        for path in paths:
            try:
                pending.append((path, self.plan(load_audio(path))))
            except (AsrforgeError, FileNotFoundError) as error:
                yield from self._flush(pending, options, batch_size)
                pending = []
                yield path, error if isinstance(error, AsrforgeError) else AsrforgeError(f"no such file: {path}")
                continue
            if sum(len(plan.chunks) for _, plan in pending) >= batch_size:
                yield from self._flush(pending, options, batch_size)
                pending = []
        yield from self._flush(pending, options, batch_size)

    def _flush(
        self, pending: Sequence[tuple[Path, Plan]], options: DecodeOptions, batch_size: int
    ) -> Iterator[tuple[Path, Transcript | AsrforgeError]]:
        if not pending:
            return
        plans = [plan for _, plan in pending]
        try:
            transcripts = join_all(plans, decode_pieces(self.engine, plans, options, batch_size))
        except AsrforgeError as error:
            yield from ((path, error) for path, _ in pending)
            return
        yield from ((path, transcript) for (path, _), transcript in zip(pending, transcripts, strict=True))


def decode_pieces(
    engine: BaseEngine | Callable[[list[np.ndarray], DecodeOptions], list[Transcript]],
    plans: Sequence[Plan],
    options: DecodeOptions,
    batch_size: int | None = None,
) -> list[Transcript]:
    """Every plan's pieces, in order, through ``engine.transcribe`` (or any such callable) ``batch_size`` at a time."""
    transcribe = engine.transcribe if isinstance(engine, BaseEngine) else engine
    pieces = [piece for plan in plans for piece in plan.pieces()]
    size = batch_size or len(pieces) or 1
    transcripts: list[Transcript] = []
    for start in range(0, len(pieces), size):
        transcripts += transcribe(pieces[start : start + size], options)
    return transcripts


def join_all(plans: Sequence[Plan], transcripts: Sequence[Transcript]) -> list[Transcript]:
    """Split the flat list of piece transcripts back per plan and stitch each."""
    joined, cursor = [], 0
    for plan in plans:
        count = len(plan.chunks)
        joined.append(plan.join(transcripts[cursor : cursor + count]))
        cursor += count
    if cursor != len(transcripts):
        raise ValueError(f"{cursor} pieces planned but {len(transcripts)} transcripts")
    return joined


def transcribe_paths(
    engine: BaseEngine, paths: Iterable[Path], options: DecodeOptions = DecodeOptions(), batch_size: int = 1
) -> Iterator[tuple[Path, Transcript | AsrforgeError]]:
    """``Pipeline(engine).transcribe_paths``: the CLI's entry point."""
    return Pipeline(engine).transcribe_paths(paths, options, batch_size)
