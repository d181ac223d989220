"""Thread pools sized to the CPUs this process may actually use (affinity and cgroup quota), not the host's.

In a container limited to 2 CPUs on a 64-core host, torch and OpenMP default to 64 threads that fight over two
cores; this plugin sizes intra-op threads to the quota and keeps inter-op work on one thread.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, register


def cpu_quota() -> int:
    """CPUs available to this process: the smaller of its affinity mask and its cgroup (v2 or v1) CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, quota) if quota else count)


def _cgroup_quota() -> int | None:
    v2 = Path("/sys/fs/cgroup/cpu.max")
    try:
        if v2.is_file():
            limit, period = v2.read_text().split()[:2]
            return None if limit == "max" else math.ceil(int(limit) / int(period))
        v1_limit, v1_period = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        if v1_limit.is_file() and v1_period.is_file():
            limit = int(v1_limit.read_text())
            return None if limit <= 0 else math.ceil(limit / int(v1_period.read_text()))
    except (OSError, ValueError):
        return None
    return None


@register
@dataclass(frozen=True)
class Threads(Plugin):
    name = "threads"
    order = 0

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
