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


def names_a_checkpoint(model: str) -> bool:
    """A local path or a hub id (``owner/name``), as opposed to a conf/engine option or preset name."""
    return Path(model).expanduser().exists() or "/" in model


def with_overrides(node: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """An engine config ``node`` with the given fields replaced (None = keep). A new ``model`` drops the option's
    ``architecture``: that describes the random weights of the option's own model, never a checkpoint (nor another
    preset, which brings its own); ``model: random`` keeps it, the way to ask for random weights of it."""
    result = dict(node)
    model = overrides.get("model")
    if model is not None and model != result.get("model") and model != RANDOM:
        result.pop("architecture", None)
    result.update({key: value for key, value in overrides.items() if value is not None})
    return result


def sibling_node(config: Any, model: str, **overrides: Any) -> dict[str, Any]:
    """The engine config node of ``config`` (a dataclass) with another ``model``: a speculative draft or dual_model's
    small model given as a checkpoint loads with the target's own engine class and settings."""
    from dataclasses import asdict

    node = {"_target_": f"{type(config).__module__}.{type(config).__qualname__}", **asdict(config)}
    return with_overrides(node, model=model, **overrides)
