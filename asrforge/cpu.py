"""How many CPUs this process may really use (a container's quota, not the host's core count)."""

from __future__ import annotations

import math
import os
from pathlib import Path


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
