"""What to run: the user's explicit choice, else this device's benchmark winner, else the embedded default.

``reports/winner.yaml`` maps a device key (``cpu``, ``nvidia-h100-80gb-hbm3``) to the winning combination: the engine
config node, the plugins and their settings, so ``asrforge serve``/``transcribe`` rebuild exactly what was measured.
The benchmark (experiments) selects and writes the winner; the runtime only reads it, here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from asrforge.combination import DEFAULT_ENGINE, Combination
from asrforge.devices import default_device_key
from asrforge.engines.weights import with_overrides
from asrforge.paths import REPO_ROOT

log = logging.getLogger(__name__)
WINNER_FILE = "winner.yaml"
GPU_FALLBACK = "cuda"  # the entry a GPU without one of its own serves; every GPU bench writes it too


def read_winners(path: str | os.PathLike) -> dict[str, Any]:
    """Every device's winner entry in ``path``; empty when there is no such file."""
    path = Path(path)
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def default_winner_path() -> Path:
    """``reports/winner.yaml`` of the current directory if there is one, else the checkout's."""
    local = Path("reports") / WINNER_FILE
    return local if local.is_file() else REPO_ROOT / "reports" / WINNER_FILE


def load_winner(device_key: str | None = None, path: str | os.PathLike | None = None) -> Combination | None:
    """The winning combination for ``device_key`` (default: this machine's default device), or None."""
    return _combination(_winner_entry(device_key, path))


def resolve_combination(
    engine: str | Mapping[str, Any] | None = None,
    plugins: Sequence[str] | None = None,
    model: str | None = None,
    device: str | None = None,
    winner_file: str | os.PathLike | None = None,
) -> tuple[Combination, str]:
    """What to run and why: explicit choices, else this device's benchmark winner, else the embedded default.

    ``engine`` is a conf/engine option name or an engine config node. ``model``/``device`` override the engine config
    in every case (the winner's plugins still apply).
    """
    if engine is None and plugins is None:
        entry = _winner_entry(None, winner_file)
        winner = _combination(entry)
        if winner is not None:
            if model is None and entry.get("random_weights"):
                log.warning(
                    "RANDOM WEIGHTS: this device's benchmark winner (%s) was measured on random weights, which "
                    "transcribe noise; pass the checkpoint to serve with its plugins (--model <path or hub id>)",
                    winner.engine.get("model"),
                )
            winner.engine = with_overrides(winner.engine, model=model, device=device)
            return winner, "benchmark winner"
        _warn_no_gpu_winner(winner_file)
    source = "command line" if engine or plugins else "embedded default"
    if isinstance(engine, Mapping):  # an engine config node already composed (a Hydra app's `engine=` group)
        return Combination(
            engine=with_overrides(engine, model=model, device=device), plugins=list(plugins or ())
        ), source
    return Combination.named(engine or DEFAULT_ENGINE, list(plugins or ()), model=model, device=device), source


def _winner_entry(device_key: str | None, path: str | os.PathLike | None) -> dict[str, Any] | None:
    key = device_key or default_device_key()
    winners = read_winners(path or default_winner_path())
    # A GPU without an entry of its own takes the `cuda` one (every GPU bench writes it: the last GPU's winner).
    return winners.get(key) or (winners.get(GPU_FALLBACK) if key != "cpu" else None)


def _combination(entry: Mapping[str, Any] | None) -> Combination | None:
    if not entry:
        return None
    return Combination(engine=dict(entry["engine"]), plugins=list(entry["plugins"]), settings=dict(entry["settings"]))


def _warn_no_gpu_winner(winner_file: str | os.PathLike | None) -> None:
    """On a GPU without a benchmark winner, say loudly what runs instead (the embedded default, unoptimised) and why."""
    import torch

    if not torch.cuda.is_available():
        return
    log.warning(
        "NO GPU WINNER: %s has no entry for this GPU (%s) nor a `%s` one, so the embedded default %s runs on the GPU "
        "without any optimization. Run `asrforge bench +bench=gpu` here to write one, or choose with engine=...",
        winner_file or default_winner_path(),
        default_device_key(),
        GPU_FALLBACK,
        DEFAULT_ENGINE,
    )
