"""Feature, mask and id tensors reach the GPU through pre-allocated pinned host buffers (one DMA per tensor, the
host does not block on it), instead of pageable memory that the driver stages through its own bounce buffer."""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register
from asrforge.optimizations.host_transfer import HostTransfer


@register
@dataclass(frozen=True)
class PinnedTransfer(Plugin):
    name = "pinned_transfer"
    order = 10
    # cuda_streams stages through the same pinned buffers itself (a side-stream copy is only asynchronous from them).
    requires = Requirements(devices=frozenset({"cuda"}), conflicts=frozenset({"cuda_streams"}))

    def apply(self, engine: TorchEngine) -> TorchEngine:
        engine.host_transfer = HostTransfer(engine.device)
        return engine
