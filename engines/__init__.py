"""Model back-ends behind one interface (``engines.base.BaseEngine``), loaded by name.

Engines are imported lazily so that, e.g., using Whisper never imports CTranslate2.
"""

from __future__ import annotations

import importlib

from asrforge.engines.base import BaseEngine, Capabilities, DecodeOptions, EngineConfig
from asrforge.errors import ConfigError

# name -> "module:class"; the config dataclass of each engine names it in its ``engine`` ClassVar.
ENGINES: dict[str, str] = {
    "whisper": "asrforge.engines.whisper:WhisperEngine",
    "whisper_lean": "asrforge.engines.whisper_lean:WhisperLeanEngine",
    "qwen3_asr": "asrforge.engines.qwen3_asr:Qwen3ASREngine",
    "faster_whisper": "asrforge.engines.faster_whisper:FasterWhisperEngine",
    "vllm": "asrforge.engines.vllm:VLLMEngine",  # optional: a GPU and the vllm extra, in a venv of its own
}
# The engines above driven by transformers' ``generate``: the default of a plugin's ``Requirements.engines`` (most
# plugins change how ``generate`` runs), checked by name before any engine module is imported.
GENERATE_ENGINES = frozenset({"whisper", "qwen3_asr"})
# The engines whose class is a ``TorchEngine`` (a torch model: what plugins transforming ``nn.Module`` layers need):
# those plus whisper_lean, which runs Whisper's network without transformers. A test holds this set equal to the
# classes, so the class stays the one truth.
TORCH_ENGINES = GENERATE_ENGINES | {"whisper_lean"}


def engine_class(name: str) -> type[BaseEngine]:
    try:
        module_name, class_name = ENGINES[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown engine {name!r} (known: {', '.join(sorted(ENGINES))})") from None
    return getattr(importlib.import_module(module_name), class_name)


def load_engine(config: EngineConfig) -> BaseEngine:
    """Build and load the engine a config names (weights are read or converted here, once)."""
    return engine_class(config.engine)(config)


__all__ = [
    "BaseEngine",
    "Capabilities",
    "DecodeOptions",
    "EngineConfig",
    "ENGINES",
    "GENERATE_ENGINES",
    "TORCH_ENGINES",
    "engine_class",
    "load_engine",
]
