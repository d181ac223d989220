"""Pin the process's threads and memory to the NUMA node of its GPU, so host buffers (features, pinned staging
memory) live next to the PCIe root the GPU reads them through, and no thread crosses the socket interconnect.

Threads: ``os.sched_setaffinity`` for every thread that exists now (torch's and OpenMP's pools included; threads
started later inherit it). Memory: libnuma's ``numa_set_preferred`` when libnuma is installed (pages of later
allocations come from that node first). On a single-node host, or without a GPU, it changes nothing and records why
in ``engine.stats``: such a host has nothing to gain, which is an answer, not an error. Applied first (order 0),
before ``threads`` sizes the pools from the affinity it leaves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from asrforge.engines.base import BaseEngine
from asrforge.optimizations.base import Plugin, Requirements, register
from asrforge.optimizations.numa_topology import SYSFS, NumaPlan, gpu_bdf, plan_for

log = logging.getLogger(__name__)


def pin_all_threads(cpus: tuple[int, ...]) -> int:
    """Set the affinity of every thread of this process; the number of threads pinned."""
    tids = [int(tid) for tid in os.listdir("/proc/self/task")] if Path("/proc/self/task").is_dir() else [0]
    pinned = 0
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
            pinned += 1
        except (ProcessLookupError, PermissionError):
            continue  # a thread that ended meanwhile
    return pinned


def prefer_memory_node(node: int) -> bool:
    """Ask libnuma to allocate from ``node`` first; False where libnuma is absent."""
    name = ctypes.util.find_library("numa")
    if name is None:
        return False
    libnuma = ctypes.CDLL(name)
    if libnuma.numa_available() < 0:
        return False
    libnuma.numa_set_preferred(node)
    return True


@register
@dataclass(frozen=True)
class NumaPinning(Plugin):
    name = "numa_pinning"
    order = 0
    # The GPU's node: a CPU engine has none to be near (a CPU-only host is pinned by the `threads` plugin).
    requires = Requirements(engines=None, devices=frozenset({"cuda"}))

    sysfs: str = str(SYSFS)  # the sysfs root (tests point it at a fake tree)

    def plan(self, device: str) -> NumaPlan:
        allowed = set(os.sched_getaffinity(0))
        bdf = gpu_bdf(torch.device(device).index or 0) if torch.device(device).type == "cuda" else None
        return plan_for(bdf, allowed, Path(self.sysfs))

    def apply(self, engine: BaseEngine) -> BaseEngine:
        plan = self.plan(engine.device)
        stats = engine.stats.setdefault(self.name, {"node": plan.node, "cpus": list(plan.cpus)})
        if plan.reason is not None:
            stats["reason"] = plan.reason
            log.info("numa_pinning: no-op: %s", plan.reason)
            return engine
        stats["threads_pinned"] = pin_all_threads(plan.cpus)
        stats["memory_bound"] = prefer_memory_node(plan.node)
        return engine
