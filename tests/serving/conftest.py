"""Fixtures for the server tests: the real tiny.en engine, served by a real uvicorn on loopback (in a thread of the
test process, so servers with different settings share one loaded engine)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from asrforge.audio import load_audio
from asrforge.engines.base import BaseEngine
from asrforge.serving.app import create_app
from asrforge.transcript import Transcript


class LiveServer:
    def __init__(self, app: Any, server: uvicorn.Server):
        self.app = app
        self.server = server
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}"

    @property
    def state(self) -> Any:
        return self.app.state


@contextmanager
def live_server(engine: BaseEngine | None = None, cfg: Any = None, **serving: Any) -> Iterator[LiveServer]:
    """Serve ``engine`` with ``serving`` settings (conf/serving keys), or a whole composed serve config ``cfg`` (the
    server then loads the engine it names); waits until /ready says ready. Test servers given settings decode
    greedily unless told otherwise (``decode="fallback"`` is the served default; its own tests set it)."""
    cfg = cfg if cfg is not None else {"serving": {"warmup": False, "decode": "greedy", **serving}}
    app = create_app(cfg, engine=engine)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    live = LiveServer(app, server)
    while httpx.get(f"{live.url}/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the server never became ready")
        time.sleep(0.05)
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def server(tiny_engine: BaseEngine) -> Iterator[LiveServer]:
    with live_server(tiny_engine) as live:
        yield live


@pytest.fixture(scope="session")
def make_server(tiny_engine: BaseEngine) -> Callable[..., AbstractContextManager[LiveServer]]:
    """A server of its own for tests that need other settings: ``with make_server(limits={...}) as live:``."""
    return lambda engine=tiny_engine, **serving: live_server(engine, **serving)


@pytest.fixture(scope="session")
def jfk_bytes(jfk_path: Path) -> bytes:
    return jfk_path.read_bytes()


@pytest.fixture(scope="session")
def jfk_transcript(tiny_engine: BaseEngine, jfk_path: Path) -> Transcript:
    """What the bare engine says for the JFK clip: the server must say the same."""
    return tiny_engine.transcribe([load_audio(jfk_path)])[0]
