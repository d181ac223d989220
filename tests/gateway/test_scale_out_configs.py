"""Scale-out configuration: the Ray Serve deployment scales on queue depth as the settings say, the settings refuse
unknown keys, and the Hydra sweep launchers resolve (each skipped with its reason where its extra is missing)."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_module
from hydra.utils import get_class

from asrforge.errors import ConfigError
from asrforge.serving.ray_serve import deployment_options
from asrforge.serving.settings import ServerSettings


def test_ray_replicas_scale_on_ongoing_requests_and_get_their_cpus_as_threads() -> None:
    settings = ServerSettings.from_config(
        {"ray": {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3, "num_cpus": 2}}
    ).ray
    options = deployment_options(settings)
    scaling = options["autoscaling_config"]
    assert (scaling["min_replicas"], scaling["max_replicas"], scaling["target_ongoing_requests"]) == (1, 4, 3)
    assert options["ray_actor_options"]["num_cpus"] == 2
    assert options["ray_actor_options"]["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "2"


def test_gateway_and_ray_settings_refuse_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="serving.gateway"):
        ServerSettings.from_config({"gateway": {"worker": 2}})
    with pytest.raises(ConfigError, match="serving.ray"):
        ServerSettings.from_config({"ray": {"replicas": 2}})


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package (hydra_plugins) is missing too
        return False


@pytest.mark.parametrize(
    ("launcher", "plugin"),
    [("ray_cluster", "hydra_plugins.hydra_ray_launcher"), ("submitit", "hydra_plugins.hydra_submitit_launcher")],
)
def test_the_sweep_launchers_resolve(launcher: str, plugin: str) -> None:
    if not _installed(plugin):
        pytest.skip(f"{plugin} is not installed (the `sweeps` extra)")
    with initialize_config_module("asrforge.conf", version_base=None):
        cfg = compose("bench", [f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert get_class(cfg.hydra.launcher._target_).__module__.startswith(plugin)
