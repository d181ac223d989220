"""Reading the packaged Hydra configs (``conf/`` installs as ``asrforge.conf``) outside a Hydra app."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from asrforge.errors import ConfigError

CONFIG_MODULE = "asrforge.conf"


def conf_dir() -> Path:
    return Path(str(files(CONFIG_MODULE)))


def group_options(group: str) -> list[str]:
    """The option names of a config group (the yaml files under ``conf/<group>/``)."""
    return sorted(path.stem for path in (conf_dir() / group).glob("*.yaml"))


def load_option(group: str, name: str) -> DictConfig:
    """One option of a config group, e.g. ``load_option("engine", "whisper-tiny-en")``."""
    path = conf_dir() / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no {group} config named {name!r} (known: {', '.join(group_options(group))})")
    return OmegaConf.load(path)


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose a primary config with Hydra overrides, as the Hydra apps do, without starting one."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def tuning_files(dataset: str) -> frozenset[str] | None:
    """The audio file names of a dataset's tuning part (``split.tune`` in ``conf/dataset/<dataset>.yaml``): the only
    files calibration, warm-up and winner selection may read. None when the dataset has no split."""
    path = conf_dir() / "dataset" / f"{dataset}.yaml"
    if not path.is_file():
        return None
    tune = (OmegaConf.load(path).get("split") or {}).get("tune")
    return frozenset(str(name) for name in tune) if tune else None


def decode_policy(name: str) -> dict:
    """A ``conf/decode`` option as plain ``DecodeOptions`` fields (``greedy``, ``beam5``, ``fallback``)."""
    return OmegaConf.to_container(load_option("decode", name), resolve=True)
