"""Where a GPU sits in the host's NUMA topology, read from sysfs (no library needed; paths are Linux's).

``/sys/bus/pci/devices/<bdf>/numa_node`` names the node a PCI device hangs off (-1: the firmware does not say),
``/sys/devices/system/node/online`` the nodes that exist, ``/sys/devices/system/node/node<N>/cpulist`` each node's
CPUs. Every function takes the sysfs root so tests can point it at a fake tree.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSFS = Path("/sys")


def parse_cpulist(text: str) -> list[int]:
    """The kernel's list format: ``0-3,8,10-11`` -> [0, 1, 2, 3, 8, 10, 11]; empty text -> []."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def online_nodes(sysfs: Path = SYSFS) -> list[int]:
    """NUMA nodes of this host ([0] where the kernel has no NUMA support: one node)."""
    path = sysfs / "devices/system/node/online"
    return parse_cpulist(path.read_text()) if path.is_file() else [0]


def node_cpus(node: int, sysfs: Path = SYSFS) -> list[int]:
    return parse_cpulist((sysfs / f"devices/system/node/node{node}/cpulist").read_text())


def normalise_bdf(bus_id: str) -> str:
    """PCI address as sysfs names it: ``00000000:1B:00.0`` (nvidia-smi, 8-digit domain) -> ``0000:1b:00.0``."""
    domain, bus, rest = bus_id.strip().lower().split(":")
    return f"{int(domain, 16):04x}:{bus}:{rest}"


def device_node(bdf: str, sysfs: Path = SYSFS) -> int | None:
    """The NUMA node of PCI device ``bdf``; None when sysfs does not say (-1 or no file)."""
    path = sysfs / "bus/pci/devices" / normalise_bdf(bdf) / "numa_node"
    if not path.is_file():
        return None
    node = int(path.read_text().strip())
    return node if node >= 0 else None


def gpu_bdf(index: int) -> str | None:
    """PCI address of CUDA device ``index`` (torch's properties where they carry it, else nvidia-smi)."""
    import torch

    properties = torch.cuda.get_device_properties(index)
    if hasattr(properties, "pci_bus_id") and hasattr(properties, "pci_domain_id"):
        return f"{properties.pci_domain_id:04x}:{properties.pci_bus_id:02x}:{properties.pci_device_id:02x}.0"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--id={index}", "--query-gpu=pci.bus_id", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return normalise_bdf(out) if out else None


@dataclass(frozen=True)
class NumaPlan:
    """What to pin to: a node and its CPUs, or ``reason`` why nothing is pinned."""

    node: int | None
    cpus: tuple[int, ...] = ()
    reason: str | None = None


def plan_for(bdf: str | None, allowed: set[int], sysfs: Path = SYSFS) -> NumaPlan:
    """The node of the GPU at ``bdf`` and its CPUs among ``allowed`` (this process's affinity)."""
    nodes = online_nodes(sysfs)
    if len(nodes) < 2:
        return NumaPlan(None, reason="single NUMA node host: every CPU is equally near the GPU, nothing to pin")
    if bdf is None:
        return NumaPlan(None, reason="no GPU PCI address known: nothing to be near")
    node = device_node(bdf, sysfs)
    if node is None:
        return NumaPlan(None, reason=f"sysfs gives no NUMA node for the GPU at {bdf}")
    cpus = sorted(set(node_cpus(node, sysfs)) & allowed)
    if not cpus:
        return NumaPlan(node, reason=f"none of this process's CPUs is on node {node}, the GPU's")
    return NumaPlan(node, tuple(cpus))
