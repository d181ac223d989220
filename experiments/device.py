"""What a benchmark ran on: the machine, the accelerator, the library versions, and the report folder's name."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from functools import cache
from importlib import metadata

import torch

from asrforge.cpu import cpu_quota
from asrforge.devices import device_key
from asrforge.engines.base import BaseEngine
from asrforge.winner import resolve_combination

# Versions that change inference speed or output; recorded with every result.
VERSIONED_PACKAGES = ("asrforge", "torch", "transformers", "faster-whisper", "ctranslate2", "torchao", "numpy")


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def device_info(device: str) -> dict:
    """The machine and (on CUDA) the GPU that ``device`` names, as a record stores them."""
    info: dict = {
        "key": device_key(device),
        "type": torch.device(device).type,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_quota": cpu_quota(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": versions()["transformers"],
    }
    if info["type"] == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["name"] = properties.name
        info["capability"] = f"{properties.major}.{properties.minor}"
        info["memory_gb"] = round(properties.total_memory / 2**30, 1)
        info["cuda_runtime"] = torch.version.cuda
        info["driver"] = _nvidia_driver()
    else:
        info["name"] = info["cpu"]
    return info


@cache
def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine options every single-engine study takes (``--engine``, ``--plugins``, ``--threads``)."""
    parser.add_argument("--engine", help="a conf/engine option (default: the benchmark winner)")
    parser.add_argument("--plugins", help="comma-separated plugins (default: the winner's)")
    # One thread by default: on a machine shared with other work, two spinning OpenMP threads were seen to slow a
    # decode 15-fold, which drowns the ratios the studies measure; the ratio, not the absolute speed, is their figure.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: leave torch's default)")


def load_study_engine(args: argparse.Namespace) -> tuple[BaseEngine, str]:
    """The engine ``add_engine_arguments`` chose, loaded on ``--threads`` threads, and why it was chosen."""
    if args.threads:
        torch.set_num_threads(args.threads)
    plugins = [name for name in args.plugins.split(",") if name] if args.plugins is not None else None
    combination, origin = resolve_combination(args.engine, plugins)
    return combination.load(), origin
