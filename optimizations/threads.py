"""Thread pools sized to the CPUs this process may actually use (affinity and cgroup quota), not the host's.

In a container limited to 2 CPUs on a 64-core host, torch and OpenMP default to 64 threads that fight over two
cores; this plugin sizes intra-op threads to the quota and keeps inter-op work on one thread.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from asrforge.cpu import cpu_quota
from asrforge.engines import TORCH_ENGINES
from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, register


@register
@dataclass(frozen=True)
class Threads(Plugin):
    name = "threads"
    order = 0
    requires = Requirements(engines=TORCH_ENGINES)

    intra_op: int | None = None  # None: the CPU quota of this process
    inter_op: int = 1

    def apply(self, engine: BaseEngine) -> BaseEngine:
        threads = self.intra_op or cpu_quota()
        # For libraries that read these when they first start a pool (MKL, OpenMP in onnxruntime, child processes).
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(self.inter_op)
        except RuntimeError:
            # torch allows this only before the first inter-op task; later calls keep the existing pool.
            warnings.warn("threads: inter-op pool already started; inter_op left unchanged", stacklevel=2)
        return engine
