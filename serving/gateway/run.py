"""``asrforge serve --role gateway|worker``: the gateway on the configured address, or one worker on the socket
the gateway passes it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence

from omegaconf import DictConfig


def run_role(role: str, cfg: DictConfig, host: str, port: int, overrides: Sequence[str], fd: int | None) -> int:
    import uvicorn

    if role == "gateway":
        from asrforge.serving.gateway.app import create_gateway_app

        # One line per forwarded request from httpx would double uvicorn's access log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        app = create_gateway_app(cfg, overrides)
        uvicorn.run(app, host=host, port=port, ws_per_message_deflate=False, log_level="info")
        return 0
    if fd is None:
        raise SystemExit("asrforge serve --role worker: needs --fd (the gateway starts workers; see docs/scaling.md)")
    from asrforge.serving.app import create_app

    # The gateway bound and listens on this socket; the worker only accepts on it.
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        create_app(cfg), ws_per_message_deflate=False, log_level="warning", timeout_graceful_shutdown=5
    )
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
    return 0
