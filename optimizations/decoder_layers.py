"""Decoder layers dropped or merged: keep only the listed layers of Whisper's decoder (a shallower decoder, no
retraining), each kept layer optionally the mean of a group of layers (``merge``, BaldWhisper's layer merging).

Each generated token runs every decoder layer, so per-token cost falls with the layers dropped (Distil-Whisper keeps 2
of 32 and retrains them; BaldWhisper merges layers). Without retraining the residual stream of a kept layer no longer
carries what a dropped one added, so WER rises: reports/cpu/shrink.md gives the curve for each subset, chosen on
the tuning part of the dev data only. The shallower model also serves as a draft for assisted decoding of the
full one (speculative decoding keeps the full model's greedy output).

``merge`` lists groups of layers whose parameters are averaged into the group's one kept member, the others dropped:
BaldWhisper merges adjacent layers this way, then retrains the merged model by distillation, which these machines
cannot (their only speech is the evaluation set). Without that step a merged layer is neither layer: on the dev
set's tuning part merging was measured worse than dropping (reports/cpu/shrink.md), so the option is there to show
the curve, and the bench's WER tolerance keeps such a row from being served.

Cache and timestamps follow the kept layers: each kept layer gets its new index (the KV cache is indexed by it) and
the cross-attention heads used for word timing are renumbered, those of dropped layers dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from asrforge.engines.base import TorchEngine
from asrforge.errors import ConfigError
from asrforge.optimizations.base import Plugin, Requirements, Target, register


@register
@dataclass(frozen=True)
class DecoderLayers(Plugin):
    name = "decoder_layers"
    order = 15  # before int8 (20): quantize only the layers that stay
    requires = Requirements(engines=frozenset({"whisper"}))

    keep: tuple[int, ...] = (0, 1, 2)  # decoder layer indices kept, in order
    merge: tuple[tuple[int, ...], ...] = ()  # groups averaged into their one kept member (the others dropped)

    def refusal(self, target: Target) -> str | None:
        reason = super().refusal(target)
        if reason:
            return reason
        keep = tuple(self.keep)
        if not keep:
            return "decoder_layers: keep lists no layer"
        if list(keep) != sorted(set(keep)) or min(keep) < 0:
            return f"decoder_layers: keep must list distinct layer indices >= 0 in increasing order, not {list(keep)}"
        grouped = [index for group in self.merge for index in group]
        if len(grouped) != len(set(grouped)) or min(grouped, default=0) < 0:
            return f"decoder_layers: merge groups must be disjoint lists of layer indices >= 0, not {self._groups()}"
        for group in self.merge:
            if len(group) < 2 or sum(index in keep for index in group) != 1:
                return (
                    f"decoder_layers: merge group {list(group)} must hold two layers or more, one of them kept "
                    f"(keep {list(keep)})"
                )
        return None

    def _groups(self) -> list[list[int]]:
        return [list(group) for group in self.merge]

    def apply(self, engine: TorchEngine) -> TorchEngine:
        decoder = engine.decoder_module()
        depth = len(decoder.layers)
        if max(self.keep) >= depth or any(index >= depth for group in self.merge for index in group):
            # The depth is known only once the weights are in; checked before the model is touched.
            raise ConfigError(
                f"decoder_layers: keep {list(self.keep)} or merge {self._groups()} names a layer past the decoder's "
                f"{depth}"
            )
        for group in self.merge:
            kept = next(index for index in group if index in self.keep)
            states = [decoder.layers[index].state_dict() for index in group]
            with torch.no_grad():
                for name, tensor in decoder.layers[kept].state_dict().items():
                    tensor.copy_(torch.stack([state[name] for state in states]).mean(dim=0))
        decoder.layers = nn.ModuleList(decoder.layers[index] for index in self.keep)
        for new_index, layer in enumerate(decoder.layers):
            layer.self_attn.layer_idx = new_index
            layer.encoder_attn.layer_idx = new_index
        engine.model.config.decoder_layers = len(self.keep)
        generation = engine.model.generation_config
        heads = getattr(generation, "alignment_heads", None)
        if heads:
            renumber = {old: new for new, old in enumerate(self.keep)}
            generation.alignment_heads = [[renumber[layer], head] for layer, head in heads if layer in renumber]
        return engine
