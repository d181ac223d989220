"""Where a request's time went on the server, sent back in a W3C ``Server-Timing`` header (milliseconds).

The request path records its parts into a per-request dict held in a context variable (the endpoint runs in the
task the ASGI middleware runs in, so the dict is the request's own); ``RequestTimer`` (serving/metrics.py) starts it
and writes the header when the response starts. Parts, in order:

- ``upload``: from the request's first byte to its body's last (the client sending; part of ``parse``);
- ``parse``: from the request's first byte to the endpoint: body upload, multipart parsing, form validation;
- ``decode``: the upload's bytes to 16 kHz float32 (duration probe, PyAV or the WAV fast path, soxr);
- ``plan``: VAD and chunking (nothing for a clip that fits one window);
- ``queue``: from queueing the chunks to the inference thread taking the first (thread wake-up, batch wait);
- ``engine``: the engine's own time (what /metrics ``asrforge_inference_seconds`` counts);
- ``resume``: from the inference thread resolving the last chunk to the request's coroutine running again;
- ``render``: the transcript to the response body;
- ``total``: from the first byte to the response's start.

The load study's overhead measurement reads them (experiments/load/overhead.py); browsers show them in devtools.
Timing costs a few ``perf_counter`` calls per request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

PARTS = ("upload", "parse", "decode", "plan", "queue", "engine", "resume", "render", "total")
# Parts that lie within another one (not stretches of their own).
WITHIN = {"upload": "parse"}
HEADER = "server-timing"

_START = "_start"
_timings: ContextVar[dict[str, float] | None] = ContextVar("asrforge_request_timings", default=None)


def begin() -> dict[str, float]:
    """A fresh record for the request running in this context, started now."""
    timings = {_START: time.perf_counter()}
    _timings.set(timings)
    return timings


def add(part: str, seconds: float) -> None:
    """Add ``seconds`` to ``part`` of the current request (nothing outside a timed request)."""
    timings = _timings.get()
    if timings is not None:
        timings[part] = timings.get(part, 0.0) + seconds


def since_start(part: str) -> None:
    """``part`` = the time from the request's first byte to now."""
    timings = _timings.get()
    if timings is not None:
        timings[part] = time.perf_counter() - timings[_START]


@contextmanager
def timed(part: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        add(part, time.perf_counter() - started)


def header_value(timings: dict[str, float]) -> bytes:
    """``parse;dur=0.41, decode;dur=0.32, ..., total;dur=712.9``: the parts recorded, then the total so far."""
    parts = {name: seconds for name, seconds in timings.items() if name != _START}
    parts["total"] = time.perf_counter() - timings[_START]
    return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in parts.items()).encode("latin-1")


def parse_header(value: str) -> dict[str, float]:
    """The parts of a ``Server-Timing`` value, in ms (entries without a duration are skipped)."""
    parts: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (piece.strip() for piece in entry.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key == "dur" and name:
                parts[name] = float(number)
    return parts
