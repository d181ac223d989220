"""What a gate run measures, resolved from ``conf/gate.yaml`` before anything loads: the device, the files, and what
each subject is on each side (the winner is read from each checkout's own ``reports/winner.yaml``, so a change of
winner is judged like any other change of the served path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from omegaconf import DictConfig, OmegaConf

from asrforge.config import conf_dir
from asrforge.devices import device_key
from asrforge.errors import ConfigError
from asrforge.experiments.datasets import load_manifest, register_resolvers

# Plugins whose effect is process-wide: with several engines in one process they would act on all of them.
PROCESS_WIDE_PLUGINS = frozenset({"threads", "tf32", "cudnn_benchmark"})


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/gate.yaml`` (or ``path``) with ``key=value`` overrides."""
    register_resolvers()
    cfg = OmegaConf.load(path or conf_dir() / "gate.yaml")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))


@dataclass
class Plan:
    cfg: DictConfig
    device: str  # cpu, cuda, cuda:N
    key: str  # the device's entry in winner.yaml: cpu, nvidia-h100-80gb-hbm3
    audio: list[np.ndarray]
    references: list[str]
    languages: list[str | None]
    notes: list[str] = field(default_factory=list)


def plan(cfg: DictConfig) -> Plan:
    """Resolve the device and load the files; raises ``ConfigError``/``FileNotFoundError`` on a mistake."""
    from asrforge.audio import load_audio

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.reference is not None and cfg.reference not in cfg.subjects:
        raise ConfigError(f"the gate's reference {cfg.reference!r} is not one of its subjects")
    dataset = load_manifest(cfg.manifest)
    by_name = {utterance.audio.name: utterance for utterance in dataset.utterances}
    missing = [name for name in cfg.files if name not in by_name]
    if missing:
        raise ConfigError(f"not in {dataset.manifest}: {', '.join(missing)}")
    utterances = [by_name[name] for name in cfg.files]
    return Plan(
        cfg=cfg,
        device=device,
        key=device_key(device),
        audio=[load_audio(utterance.audio) for utterance in utterances],
        references=[utterance.text for utterance in utterances],
        languages=[utterance.language for utterance in utterances],
    )


def selections(plan: Plan, root: Path, head: bool) -> dict[str, dict[str, Any]]:
    """Per subject, what the worker of the checkout at ``root`` loads: the device's winner.yaml entry of that
    checkout, or a conf/engine option with plugins and overrides (resolved by that checkout's code). A device with no
    winner entry drops the winner subject; the peer runs on the head only."""
    cfg = plan.cfg
    chosen: dict[str, dict[str, Any]] = {}
    for name, spec in cfg.subjects.items():
        name = str(name)
        if spec.get("head_only") and not head:
            continue
        if spec.get("winner"):
            path = Path(str(cfg.winner_file))
            path = path if path.is_absolute() else root / path
            entry = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(plan.key) if path.is_file() else None
            if not entry:
                if head:
                    plan.notes.append(f"{path} has no winner for {plan.key}: the gate judges the other subjects")
                continue
            chosen[name] = {
                "engine": dict(entry["engine"]),
                "plugins": list(entry["plugins"]),
                "settings": dict(entry.get("settings") or {}),
                "row": entry.get("row"),
            }
        else:
            overrides = OmegaConf.to_container(spec.overrides, resolve=True) if "overrides" in spec else {}
            plugins = list(spec.get("plugins") or ())
            chosen[name] = {"option": str(spec.engine), "plugins": plugins, "overrides": overrides}
        shared = sorted(PROCESS_WIDE_PLUGINS & set(chosen[name]["plugins"]))
        if shared:
            raise ConfigError(
                f"gate subject {name!r} uses {', '.join(shared)}, which change process-wide state and would act on "
                "the other engines of its process too"
            )
    if not [name for name in chosen if name != cfg.reference]:
        raise ConfigError(f"the gate has nothing to judge on {plan.key}: every subject but the reference is absent")
    return chosen
