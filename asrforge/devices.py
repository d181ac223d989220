"""Naming a device: the key under which reports and the benchmark winner of that device are filed."""

from __future__ import annotations

import re


def slug(text: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_key(device: str) -> str:
    """The report folder for ``device``: ``cpu`` for any CPU, else a slug of the GPU's name."""
    import torch

    if torch.device(device).type != "cuda":
        return "cpu"
    return slug(torch.cuda.get_device_name(device))


def default_device_key() -> str:
    """This machine's default device: its first GPU when there is one, else ``cpu``."""
    import torch

    return device_key("cuda" if torch.cuda.is_available() else "cpu")
