"""The same app as a Ray Serve deployment: one config runs on one host or many, replicas autoscaled on queue depth.

Each replica builds ``create_app(cfg)`` itself (``serve.ingress`` with a builder function: the app holds a scheduler
thread and cannot be pickled), so a replica is exactly the single-process server: its lifespan loads the model, its
scheduler batches, its routes answer HTTP, SSE and the realtime WebSocket. Ray Serve's proxy spreads requests over
the replicas and its autoscaler adds one when the ongoing requests (queued + running) per replica pass
``target_ongoing_requests``: queue depth, measured by Ray itself, with no home-made cluster logic here.

``asrforge serve --role ray [overrides]`` starts a local Ray (or joins ``serving.ray.address``) and serves on the
given host and port until interrupted. Needs the ``ray`` extra.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from asrforge.serving.settings import RaySettings, ServerSettings

APP_NAME = "asrforge"


def deployment_options(settings: RaySettings) -> dict[str, Any]:
    """``serve.deployment`` keyword arguments for ``settings``: autoscaling on ongoing requests per replica, and a
    replica's CPUs/GPUs (its torch threads follow its CPUs)."""
    threads = max(1, math.floor(settings.num_cpus))
    return {
        "name": APP_NAME,
        "max_ongoing_requests": settings.max_ongoing_requests,
        "autoscaling_config": {
            "min_replicas": settings.min_replicas,
            "initial_replicas": settings.min_replicas,
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": settings.target_ongoing_requests,
            "upscale_delay_s": settings.upscale_delay_s,
            "downscale_delay_s": settings.downscale_delay_s,
        },
        "ray_actor_options": {
            "num_cpus": settings.num_cpus,
            "num_gpus": settings.num_gpus,
            "runtime_env": {
                "env_vars": {
                    "OMP_NUM_THREADS": str(threads),
                    "MKL_NUM_THREADS": str(threads),
                    "OMP_WAIT_POLICY": "PASSIVE",
                }
            },
        },  # fmt: skip
    }


def build_application(cfg: DictConfig | Mapping[str, Any]) -> Any:
    """The bound Ray Serve application of the serve config ``cfg``."""
    from ray import serve

    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    settings = ServerSettings.from_config(node.get("serving"))
    plain_cfg = OmegaConf.to_container(node, resolve=True)

    def build_app() -> Any:  # runs in each replica
        from asrforge.serving.app import create_app

        return create_app(plain_cfg)

    deployment = serve.deployment(serve.ingress(build_app)(), **deployment_options(settings.ray))
    return deployment.bind()


def start(cfg: DictConfig, host: str, port: int) -> None:
    """Connect to (or start) Ray, start Serve's HTTP proxy on ``host:port`` and deploy the app (returns once the
    first replica is up)."""
    import ray
    from ray import serve

    settings = ServerSettings.from_config(cfg.get("serving"))
    if not ray.is_initialized():
        ray.init(address=settings.ray.address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_application(cfg), name=APP_NAME, route_prefix="/", blocking=False)


def replica_count() -> int:
    """Running replicas of the app (for reports: autoscaling at work)."""
    from ray import serve

    application = serve.status().applications.get(APP_NAME)
    if application is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in application.deployments.values())


def serve_forever(cfg: DictConfig, host: str, port: int) -> int:
    from ray import serve

    start(cfg, host, port)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0
