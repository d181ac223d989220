"""Host-to-device copies on a side CUDA stream, from pinned buffers, synchronised with compute by events only.

A copy queued on the compute stream waits for every kernel queued before it; on its own stream it runs while they
do (the copy engines are separate from the SMs), and only the kernels that read the copied tensor wait for it. The
gain shows only when a copy is issued while the GPU is still busy (a pipelined caller); whether it overlaps is
measured from a profiler trace (``asrforge.experiments.bench.transfer_overlap``), not assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

from asrforge.engines.base import TorchEngine
from asrforge.optimizations.base import Plugin, Requirements, register
from asrforge.optimizations.host_transfer import HostTransfer


@register
@dataclass(frozen=True)
class CudaStreams(Plugin):
    name = "cuda_streams"
    order = 10
    requires = Requirements(devices=frozenset({"cuda"}), conflicts=frozenset({"pinned_transfer"}))

    def apply(self, engine: TorchEngine) -> TorchEngine:
        engine.host_transfer = HostTransfer(engine.device, side_stream=True)
        return engine
