"""Prometheus metrics of one app (its own registry, so several apps in one process, as in tests, do not collide)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asrforge.serving import timing

# Seconds: from a 5 ms overhead-only request to a long file.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def request_latency_histogram(registry: CollectorRegistry) -> Histogram:
    """Request latency by route template and status: one name and label set for the server and the gateway, so one
    dashboard reads both."""
    return Histogram(
        "asrforge_request_latency_seconds",
        "Time from request received to response complete, by endpoint",
        ["endpoint", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.request_latency = request_latency_histogram(r)
        self.queue_depth = Gauge("asrforge_queue_depth", "Audio chunks waiting for the inference executor", registry=r)
        self.batch_size = Histogram(
            "asrforge_batch_size", "Chunks decoded together", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.inference_seconds = Histogram(
            "asrforge_inference_seconds", "Engine time per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.call_seconds = Counter(
            "asrforge_model_call_seconds",
            "Engine time in model calls other than batch decodes (realtime stream steps), inline ones included",
            registry=r,
        )
        self.audio_seconds = Counter("asrforge_audio_seconds_total", "Seconds of audio transcribed", registry=r)
        self.real_time_factor = Histogram(
            "asrforge_real_time_factor",
            "Engine seconds per second of audio, per batch (< 1 is faster than real time)",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=r,
        )
        self.rejected = Counter("asrforge_rejected_total", "Requests refused with 429 (queue full)", registry=r)
        self.inline_steps = Counter(
            "asrforge_inline_steps_total", "Realtime stream steps run between two decoding steps", registry=r
        )
        self.realtime_sessions = Gauge("asrforge_realtime_sessions", "Open WebSocket sessions", registry=r)


class RequestTimer:
    """ASGI middleware: every HTTP request's latency, up to its last body byte (so an SSE stream counts whole),
    labelled by route template and status; errors are counted as well as successes. With ``server_timing``, the
    response also says where the server's time went (serving/timing.py)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, server_timing: bool = False):
        self.app = app
        self.metrics = metrics
        self.server_timing = server_timing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        parts = timing.begin() if self.server_timing else None

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if parts is not None:
                    headers = [*message.get("headers", ()), (timing.HEADER.encode(), timing.header_value(parts))]
                    message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self._observe(scope, status, started)

        try:
            await self.app(scope, receive, timed_send)
        except Exception:
            self._observe(scope, 500, started)
            raise

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        # The route's template, never the raw path: unknown paths must not create a label each.
        endpoint = getattr(route, "path", None) or "unmatched"
        self.metrics.request_latency.labels(endpoint, str(status)).observe(time.perf_counter() - started)
