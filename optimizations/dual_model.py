"""Streaming: a small model writes the partials, the engine's own (bigger) model writes the final of each utterance.

Partials need low latency, finals need accuracy: the small model (``partial_engine``, a conf/engine option of the
same engine family, e.g. Qwen3-ASR 0.6B beside 1.7B, Whisper tiny.en beside base, or a checkpoint directory loaded
with the engine's own class) decodes every chunk with its
incremental decoder; at a pause the big model decodes the window once and its text replaces the partials. Both read
the same audio: one buffer, one VAD and one window (commit points), and models of one family share the feature
extractor's settings (checked when the plugin is applied). The small model copies the streaming settings of
``kv_reuse`` / ``causal_encoder`` when those are in the combination (they apply first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from hydra.utils import instantiate
from omegaconf import OmegaConf

from asrforge.config import load_option
from asrforge.engines.base import BaseEngine, DecodeOptions
from asrforge.engines.stream_session import IncrementalDecoder
from asrforge.engines.weights import names_a_checkpoint, sibling_node, with_overrides
from asrforge.errors import ConfigError
from asrforge.optimizations.assembly import assemble, make_plugins
from asrforge.optimizations.base import Plugin, Requirements, Target, register


@register
@dataclass(frozen=True)
class DualModel(Plugin):
    name = "dual_model"
    streaming_only = True
    order = 90  # after the streaming settings (kv_reuse, causal_encoder), which the small model copies
    requires = Requirements(engines=frozenset({"whisper", "qwen3_asr"}))

    # The small model: a conf/engine option, or a checkpoint directory / hub id loaded with the target's engine.
    partial_engine: str = "whisper-tiny-en"
    partial_plugins: Sequence[str] = ("eval_mode", "sdpa")

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        if names_a_checkpoint(self.partial_engine):
            return None  # loaded with the target's own engine class: the same family by construction
        try:
            config = instantiate(load_option("engine", self.partial_engine), _convert_="all")
        except ConfigError as error:
            return f"dual_model: {error}"
        if config.engine != target.engine:
            return f"dual_model needs a partial model of the same family ({target.engine}); got {config.engine}"
        return None

    def apply(self, engine: BaseEngine) -> BaseEngine:
        if names_a_checkpoint(self.partial_engine):  # a checkpoint directory or hub id, loaded with the target's engine
            node = sibling_node(engine.config, self.partial_engine, device=engine.device)
        else:
            option = OmegaConf.to_container(load_option("engine", self.partial_engine), resolve=True)
            node = with_overrides(option, device=engine.device)
        partial = assemble(instantiate(node, _convert_="all"), make_plugins(self.partial_plugins))
        engine.dual_model_partial = partial  # kept with the engine, like speculative's draft
        engine.stats.setdefault(self.name, {})["partial_weights"] = partial.weights
        if _feature_extractor(engine) != _feature_extractor(partial):
            raise ConfigError(f"dual_model: {self.partial_engine} computes other features than {engine.model_name}")
        partial.stream_settings = engine.stream_settings

        def partial_decoder(options: DecodeOptions) -> IncrementalDecoder | None:
            partial.check_options(options)  # e.g. an English-only small model beside a multilingual final model
            return partial.incremental_decoder(options)

        engine.stream_settings = replace(engine.stream_settings, partial_decoder=partial_decoder)
        return engine


def _feature_extractor(engine: BaseEngine) -> dict:
    extractor = engine.processor.feature_extractor
    return {key: getattr(extractor, key, None) for key in ("feature_size", "sampling_rate", "hop_length", "n_fft")}
