"""Files in, transcripts out: decode each file, batch, transcribe. Shared by the CLI and (later) the server."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from asrforge.audio import load_audio
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.errors import AsrforgeError
from asrforge.transcript import Transcript


def transcribe_paths(
    engine: BaseEngine, paths: Iterable[Path], options: DecodeOptions = DecodeOptions(), batch_size: int = 1
) -> Iterator[tuple[Path, Transcript | AsrforgeError]]:
    """Yield (path, transcript) in input order; a file that cannot be read yields its error instead."""
    pending: list[tuple[Path, np.ndarray]] = []
    for path in paths:
        try:
            pending.append((path, load_audio(path)))
        except (AsrforgeError, FileNotFoundError) as error:
            yield from _flush(engine, pending, options)
            pending = []
            yield path, error if isinstance(error, AsrforgeError) else AsrforgeError(f"no such file: {path}")
            continue
        if len(pending) == batch_size:
            yield from _flush(engine, pending, options)
            pending = []
    yield from _flush(engine, pending, options)


def _flush(
    engine: BaseEngine, pending: Sequence[tuple[Path, np.ndarray]], options: DecodeOptions
) -> Iterator[tuple[Path, Transcript | AsrforgeError]]:
    if not pending:
        return
    try:
        transcripts = engine.transcribe([audio for _, audio in pending], options)
    except AsrforgeError as error:
        yield from ((path, error) for path, _ in pending)
        return
    yield from ((path, transcript) for (path, _), transcript in zip(pending, transcripts, strict=True))
