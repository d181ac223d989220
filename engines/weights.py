"""Which weights ran: one short, stable identity for a checkpoint (path + content hash) or for random weights.

Every record, log line and ``/v1/models`` entry names the weights with this string, so a row measured on random
weights can never pass for a checkpoint's, and two checkpoints under the same name tell apart.

The hash must be cheap on multi-GB checkpoints yet tell two fine-tunes (or two seeds) of one architecture apart,
whose configs and file sizes are identical. It covers the small files whole (configs, indexes, tokenizer files) and,
for each large (weights) file, its size plus its first and last MiB: a safetensors file starts with its header (names,
shapes, offsets) followed by the first tensors' bytes, and any retraining changes those bytes. That reads at most
2 MiB a shard instead of gigabytes (a full sha256 of a 1.7B checkpoint takes seconds).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RANDOM = "random"
SAMPLE_BYTES = 1 << 20  # read from each end of a weights file
SMALL_FILE_BYTES = 16 << 20  # files up to this size (configs, tokenizers, indexes, tiny models) are hashed whole
HASH_CHARS = 12


def checkpoint_id(path: str | Path) -> str:
    """``<absolute path> sha256:<12 hex>`` for a checkpoint directory (or a single weights file)."""
    path = Path(path).expanduser().resolve()
    return f"{path} sha256:{_content_hash(path, *_stamp(path))}"


def random_id(seed: int, architecture: Mapping[str, Any]) -> str:
    """``random (seed N, architecture sha256:<8 hex>)``: seeded random weights of a described architecture."""
    digest = hashlib.sha256(json.dumps(architecture, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{RANDOM} (seed {seed}, architecture sha256:{digest})"


def weights_id(model: str) -> str:
    """A local directory or file: its ``checkpoint_id``; anything else (a hub id, a package preset): the name."""
    path = Path(model).expanduser()
    return checkpoint_id(path) if path.exists() else model


def _stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of every file: the cache key, so an unchanged checkpoint is hashed once per process."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p.relative_to(path) if path.is_dir() else p.name), *_size_mtime(p)) for p in files)


def _size_mtime(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _content_hash(root: Path, *stamp: tuple[str, int, int]) -> str:
    digest = hashlib.sha256()
    for name, size, _ in stamp:
        if name.startswith(".") or "/." in name:  # caches and temporary files beside the checkpoint
            continue
        file = root / name if root.is_dir() else root
        digest.update(f"{name}\0{size}\0".encode())
        with file.open("rb") as handle:
            if size <= SMALL_FILE_BYTES:
                digest.update(handle.read())
            else:
                digest.update(handle.read(SAMPLE_BYTES))
                handle.seek(size - SAMPLE_BYTES)
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()[:HASH_CHARS]
