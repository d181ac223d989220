"""Inference optimizations, one plugin per module, composable and selected by name from config.

``make_plugins(["sdpa", "int8_dynamic"])`` builds plugins from their ``conf/optimizations/<name>.yaml`` (or from the
``optimizations`` node of a composed config, which carries the user's overrides); ``compose(engine, plugins)``
checks the whole combination and applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import instantiate

from asrforge.config import load_option
from asrforge.errors import ConfigError
from asrforge.optimizations import (  # noqa: F401  (imported to register the plugins)
    cached_logit_masks,
    causal_encoder,
    cuda_graphs,
    cuda_streams,
    cudnn_benchmark,
    decoder_layers,
    dual_model,
    encoder_compile,
    encoder_window,
    eval_mode,
    flash_attention_2,
    fp8,
    int8_dynamic,
    kv_reuse,
    numa_pinning,
    onnx_encoder,
    pinned_transfer,
    repetition_guard,
    sdpa,
    smoothquant_int8,
    speculative,
    static_cache,
    tensorrt_encoder,
    tf32,
    threads,
    torch_compile,
    warmup,
)
from asrforge.optimizations.base import (
    REGISTRY,
    Plugin,
    Requirements,
    Target,
    application_order,
    combination_refusal,
    compose,
    register,
)


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


__all__ = [
    "REGISTRY",
    "Plugin",
    "Requirements",
    "Target",
    "application_order",
    "combination_refusal",
    "compose",
    "make_plugin",
    "make_plugins",
    "register",
]
