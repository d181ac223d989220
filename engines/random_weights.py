"""Seeded random weights, built once and then read from the cache.

Building a 1.7B model's random weights draws two billion normals on one CPU thread (~30 s here, per process); a
benchmark loads its model once per row, in a fresh process, so the GPU matrix spent most of its device time drawing
numbers. The first build is saved (float32, as built, so every device still gets the same weights) under the cache and
later loads read it back with initialisation skipped: the same tensors, bit for bit, in the time a file read takes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model
from transformers.initialization import no_init_weights

from asrforge.paths import cache_dir


def cached_random_model(identity: str, seed: int, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``build()`` under ``torch.manual_seed(seed)``, or the same weights from the cache file named by ``identity``.

    ``identity`` must name everything the weights depend on (seed and architecture: engines/weights.py's
    ``random_id``). The caller's random state is left as it was either way.
    """
    path = random_weights_file(identity)
    if path.exists():
        with no_init_weights():
            model = build()
        model.tie_weights()  # skipped with the initialisation; the file holds a tied tensor once
        load_model(model, path, strict=True)
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    # Written whole, then renamed: two processes building at once each leave a complete file.
    partial = path.with_suffix(f".{os.getpid()}.partial")
    save_model(model, str(partial))
    partial.replace(path)
    return model


def random_weights_file(identity: str) -> Path:
    folder = cache_dir() / "random-weights"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.safetensors"
