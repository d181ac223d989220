"""A real gateway (uvicorn on loopback, in a thread of the test process) in front of one real worker process
(``asrforge serve --role worker``, Whisper tiny.en) that the gateway starts on demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from asrforge.serving.gateway.app import create_gateway_app

# The same exact, fast combination as the server tests' engine; no warm-up, so a cold start is as short as it gets.
WORKER_OVERRIDES = ["engine=whisper-tiny-en", "plugins=[eval_mode,sdpa,cached_logit_masks]", "serving.warmup=false"]


class LiveGateway:
    def __init__(self, app: Any, server: uvicorn.Server):
        self.app = app
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"

    @property
    def pool(self) -> Any:
        return self.app.state.pool

    def workers(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/gateway/workers", timeout=10).json()["workers"]

    def wait_for(self, predicate: Any, timeout_s: float = 180) -> dict[str, Any]:
        """Poll worker 0's description until ``predicate`` holds (a bound against a hang, not a speed claim)."""
        deadline = time.monotonic() + timeout_s
        while True:
            worker = self.workers()[0]
            if predicate(worker):
                return worker
            if time.monotonic() > deadline:
                raise AssertionError(f"worker never reached the expected state: {worker}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    log_dir: Path = tmp_path_factory.mktemp("gateway-logs")
    cfg = {"serving": {"gateway": {"workers": 1, "idle_timeout_s": None, "retry_after_s": 2, "log_dir": str(log_dir)}}}
    app = create_gateway_app(cfg, WORKER_OVERRIDES)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield LiveGateway(app, server)
    finally:
        server.should_exit = True
        thread.join(60)
