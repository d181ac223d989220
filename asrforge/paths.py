"""Where things live on disk: the user's cache, and the shared evaluation audio."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Per-user cache for converted checkpoints and exports (``$ASRFORGE_CACHE`` or ``~/.cache/asrforge``)."""
    root = os.environ.get("ASRFORGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "asrforge"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def eval_data_dir() -> Path:
    """The real-speech evaluation set (``$ASRFORGE_EVAL_DATA``, else ``../shared/data/eval`` beside the checkout)."""
    return Path(os.environ.get("ASRFORGE_EVAL_DATA", REPO_ROOT.parent / "shared" / "data" / "eval"))
