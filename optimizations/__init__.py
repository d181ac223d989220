"""Inference optimizations, one plugin per module, composable and selected by name from config.

``make_plugins(["sdpa", "int8_dynamic"])`` builds plugins from their ``conf/optimizations/<name>.yaml`` (or from the
``optimizations`` node of a composed config, which carries the user's overrides); ``compose(engine, plugins)``
checks the whole combination and applies it; ``assemble(config, plugins)`` loads an engine and does both.
"""

from __future__ import annotations

from asrforge.optimizations import (  # noqa: F401  (imported to register the plugins)
    attention_heads,
    beam_sharing,
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
    native_cross_attention,
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
from asrforge.optimizations.assembly import assemble, make_plugin, make_plugins
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

__all__ = [
    "assemble",
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
