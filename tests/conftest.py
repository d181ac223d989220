"""Shared fixtures: the real evaluation audio (by path, never copied) and the offline switches for every test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Nothing in the suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from asrforge.paths import eval_data_dir  # noqa: E402


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    path = eval_data_dir() / "dev"
    if not (path / "manifest.jsonl").is_file():
        pytest.skip(f"the real-speech dev set is not at {path} (set ASRFORGE_EVAL_DATA)")
    return path


@pytest.fixture(scope="session")
def dev_manifest(dev_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (dev_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def jfk_path(dev_dir: Path) -> Path:
    return dev_dir / "fasterwhisper_jfk.wav"
