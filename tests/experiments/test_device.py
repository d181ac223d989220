"""The machine a record was measured on, and the report folder named after it."""

from __future__ import annotations

from asrforge.devices import device_key, slug
from asrforge.experiments.device import device_info


def test_gpu_names_become_folder_names():
    assert slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert slug("NVIDIA GeForce RTX 4090 ") == "nvidia-geforce-rtx-4090"


def test_any_cpu_reports_under_cpu_with_its_model_and_versions():
    assert device_key("cpu") == "cpu"
    info = device_info("cpu")
    assert info["key"] == "cpu" and info["type"] == "cpu"
    assert info["cpu"] and info["cpu_quota"] >= 1 and info["torch"] and info["transformers"]
