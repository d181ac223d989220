"""The plugin contract: a frozen dataclass config, a ``requires`` declaration, and ``apply(engine) -> engine``.

A combination is checked as a whole against a ``Target`` (engine, device, dtype, GPU capability) before any plugin
touches the engine, so an unsupported combination is refused with one line instead of failing half-applied.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

from asrforge.engines import GENERATE_ENGINES
from asrforge.errors import RefusedCombinationError

if TYPE_CHECKING:
    from asrforge.engines.base import BaseEngine, EngineConfig


@dataclass(frozen=True)
class Target:
    """What a combination is checked against; known from the engine config, before weights load."""

    engine: str
    device: str  # "cpu" | "cuda" | "cuda:N"
    dtype: str
    capability: tuple[int, int] | None = None  # CUDA compute capability, None on CPU

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type

    @classmethod
    def of(cls, engine_name: str, device: str, dtype: str) -> Target:
        capability = torch.cuda.get_device_capability(device) if torch.device(device).type == "cuda" else None
        return cls(engine=engine_name, device=device, dtype=dtype, capability=capability)

    @classmethod
    def from_config(cls, config: EngineConfig) -> Target:
        return cls.of(config.engine, config.resolved_device(), config.resolved_dtype())

    @classmethod
    def from_engine(cls, engine: BaseEngine) -> Target:
        return cls.of(engine.name, engine.device, engine.dtype)


@dataclass(frozen=True)
class Requirements:
    """What a plugin needs; ``None`` means "any"."""

    devices: frozenset[str] = frozenset({"cpu", "cuda"})  # device types
    min_capability: tuple[int, int] | None = None
    dtypes: frozenset[str] | None = None
    packages: tuple[str, ...] = ()  # importable module names
    engines: frozenset[str] | None = GENERATE_ENGINES  # None: any engine; by default those driven by generate
    conflicts: frozenset[str] = field(default_factory=frozenset)  # plugin names it cannot be combined with

    def refusal(self, name: str, target: Target) -> str | None:
        """One line saying why ``name`` cannot run on ``target``, or None."""
        if self.engines is not None and target.engine not in self.engines:
            return f"{name} needs engine {' or '.join(sorted(self.engines))}; this is {target.engine}"
        if target.device_type not in self.devices:
            return f"{name} needs a {' or '.join(sorted(self.devices))} device; this is {target.device_type}"
        if self.min_capability is not None and (target.capability or (0, 0)) < self.min_capability:
            need = ".".join(map(str, self.min_capability))
            have = ".".join(map(str, target.capability)) if target.capability else "none"
            return f"{name} needs CUDA compute capability >= {need}; this device has {have}"
        if self.dtypes is not None and target.dtype not in self.dtypes:
            return f"{name} needs dtype {' or '.join(sorted(self.dtypes))}; the engine runs {target.dtype}"
        missing = [pkg for pkg in self.packages if importlib.util.find_spec(pkg) is None]
        if missing:
            return f"{name} needs the package(s) {', '.join(missing)}, which are not installed"
        return None


class Plugin(ABC):
    """Base of every optimization. Subclasses are frozen dataclasses registered with ``@register``."""

    name: ClassVar[str]
    requires: ClassVar[Requirements] = Requirements()
    # Application order within a combination: environment (0) < weights/graph (20) < decoding (40) <
    # compilation (60) < output hooks (80) < warm-up (100). Users list plugins in any order; they run in this one.
    order: ClassVar[int] = 50
    # A plugin that changes only ``stream_session()`` (live streams): offline transcripts are untouched, so its
    # benchmark is the streaming one (experiments/streaming/run.py), not a row of the offline matrix.
    streaming_only: ClassVar[bool] = False
    # A plugin that changes how the engine computes, not what (a kernel): an engine's companion on the same weights
    # (whisper_lean's, for word timestamps and streaming) may go without it, where it might not even run.
    kernel_only: ClassVar[bool] = False

    def refusal(self, target: Target) -> str | None:
        """Why this plugin, as configured, cannot run on ``target`` (plugins with run-time checks extend this)."""
        return self.requires.refusal(self.name, target)

    @abstractmethod
    def apply(self, engine: BaseEngine) -> BaseEngine:
        """Change the engine in place (or wrap parts of it) and return it."""


REGISTRY: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: make a plugin available by its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two plugins are named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def combination_refusal(target: Target, plugins: Sequence[Plugin]) -> str | None:
    """Why this list of plugins cannot run together on ``target``, or None. Touches nothing."""
    names = [plugin.name for plugin in plugins]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        return f"plugin(s) listed twice: {', '.join(duplicates)}"
    for plugin in plugins:
        clash = sorted(plugin.requires.conflicts & set(names))
        if clash:
            return f"{plugin.name} cannot be combined with {', '.join(clash)}"
    for plugin in plugins:
        reason = plugin.refusal(target)
        if reason:
            return reason
    return None


def application_order(plugins: Sequence[Plugin]) -> list[Plugin]:
    """The order plugins are applied in (stable within a stage, so the user's order breaks ties)."""
    return sorted(plugins, key=lambda plugin: plugin.order)


def compose(engine: BaseEngine, plugins: Sequence[Plugin]) -> BaseEngine:
    """Check the whole combination first, then apply it; raises ``RefusedCombinationError`` with a one-line reason."""
    reason = combination_refusal(Target.from_engine(engine), plugins)
    if reason:
        raise RefusedCombinationError(reason)
    for plugin in application_order(plugins):
        engine = plugin.apply(engine)
        engine.applied_plugins.append(plugin.name)
        engine.plugins.append(plugin)
    return engine
