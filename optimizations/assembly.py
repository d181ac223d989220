"""Not a plugin: building plugins from their configs, and an engine with its plugins applied (refused first).

``Combination.load`` and plugins that load a second engine (``dual_model``) both assemble through here, so a plugin
never needs the ``Combination`` that imports the plugin registry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import instantiate

from asrforge.config import load_option
from asrforge.engines import load_engine
from asrforge.engines.base import BaseEngine, EngineConfig
from asrforge.errors import ConfigError, RefusedCombinationError
from asrforge.optimizations.base import REGISTRY, Plugin, Target, combination_refusal, compose
from asrforge.timing import synchronize


def make_plugin(name: str, settings: Mapping[str, Any] | None = None) -> Plugin:
    """Build plugin ``name`` from ``settings[name]`` if given, else from its packaged config file."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown optimization {name!r} (known: {', '.join(sorted(REGISTRY))})")
    node = settings.get(name) if settings is not None else None
    if node is None:
        node = load_option("optimizations", name)[name]
    plugin = instantiate(node, _convert_="all")
    if not isinstance(plugin, REGISTRY[name]):
        raise TypeError(f"config of {name!r} builds {type(plugin).__name__}, not {REGISTRY[name].__name__}")
    return plugin


def make_plugins(names: Sequence[str], settings: Mapping[str, Any] | None = None) -> list[Plugin]:
    return [make_plugin(name, settings) for name in names]


def assemble(config: EngineConfig, plugins: Sequence[Plugin], timings: dict[str, float] | None = None) -> BaseEngine:
    """Load the engine and apply the plugins; refuses (``RefusedCombinationError``) before loading weights.

    ``timings``, when given, receives ``load_s`` and ``apply_s`` (the harness reports them)."""
    reason = combination_refusal(Target.from_config(config), plugins)
    if reason:
        raise RefusedCombinationError(reason)
    started = time.perf_counter()
    engine = load_engine(config)
    loaded = time.perf_counter()
    engine = compose(engine, plugins)
    synchronize(engine.device)
    if timings is not None:
        timings.update(load_s=loaded - started, apply_s=time.perf_counter() - loaded)
    return engine
