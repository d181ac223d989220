"""``asrforge serve``: compose the serve config (Hydra overrides), build the app, run it under uvicorn or granian."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence

from fastapi import FastAPI
from omegaconf import DictConfig

from asrforge.config import compose

OVERRIDES_ENV = "ASRFORGE_SERVE_OVERRIDES"  # how granian's worker process gets the command line's overrides
SERVERS = ("uvicorn", "granian")
ROLES = ("single", "gateway", "worker", "ray")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="asrforge serve",
        description="Serve the benchmark winner (reports/winner.yaml) or the given combination behind the OpenAI "
        "audio API. Extra arguments are Hydra overrides of conf/serve.yaml, e.g. engine=whisper-base "
        "plugins=[int8_dynamic] serving.api_keys=[k1] serving.scheduler.max_batch_size=16.",
    )
    p.add_argument("--host", help="address to bind (default: serving.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: serving.port, 8000)")
    p.add_argument("--server", choices=SERVERS, help="ASGI server (default: serving.server)")
    p.add_argument(
        "--role",
        choices=ROLES,
        default="single",
        help="single: one process owns the model (default); gateway: a model-less front process forwarding to "
        "worker processes started on demand (serving.gateway settings, docs/scaling.md); worker: one of those "
        "(started by the gateway); ray: Ray Serve replicas of the app (serving.ray settings, the ray extra)",
    )
    p.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # worker: the listening socket the gateway passes
    p.add_argument("overrides", nargs="*", help="Hydra overrides")
    return p


def serve_config(overrides: Sequence[str]) -> DictConfig:
    return compose("serve", overrides)


def app_from_env() -> FastAPI:
    """App factory for servers that import the app by name in their own worker process (granian)."""
    from asrforge.serving.app import create_app

    return create_app(serve_config(json.loads(os.environ.get(OVERRIDES_ENV, "[]"))))


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    cfg = serve_config(args.overrides)
    host = args.host or cfg.serving.host
    port = args.port if args.port is not None else cfg.serving.port
    server = args.server or cfg.serving.server
    if server not in SERVERS:
        raise SystemExit(f"asrforge serve: unknown server {server!r} (one of {', '.join(SERVERS)})")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    if args.role == "ray":
        from asrforge.serving.ray_serve import serve_forever

        return serve_forever(cfg, host, port)
    if args.role != "gateway":
        from asrforge.quiet import quiet_third_party

        quiet_third_party()
    if args.role != "single":
        from asrforge.serving.gateway.run import run_role

        return run_role(args.role, cfg, host, port, args.overrides, args.fd)
    if server == "granian":
        return _granian(host, port, args.overrides)
    import uvicorn

    from asrforge.serving.app import create_app

    # Per-message deflate off: PCM frames do not compress, and deflate costs CPU on every frame.
    uvicorn.run(create_app(cfg), host=host, port=port, ws_per_message_deflate=False, log_level="info")
    return 0


def _granian(host: str, port: int, overrides: Sequence[str]) -> int:
    from granian.constants import Interfaces
    from granian.server import Server

    os.environ[OVERRIDES_ENV] = json.dumps(list(overrides))
    # One worker: the model lives in one process (scale out with more servers, not workers sharing a GPU).
    Server(
        "asrforge.serving.run:app_from_env", address=host, port=port, interface=Interfaces.ASGI, factory=True,
        workers=1, websockets=True,
    ).serve()  # fmt: skip
    return 0
