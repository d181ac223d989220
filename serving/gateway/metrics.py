"""The gateway's own Prometheus metrics (workers keep theirs: scrape them at the URLs /gateway/workers lists)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from asrforge.serving.metrics import LATENCY_BUCKETS, request_latency_histogram


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.request_latency = request_latency_histogram(r)
        self.in_flight = Gauge(
            "asrforge_gateway_in_flight", "Requests and sessions forwarded to a worker, not yet answered", ["worker"],
            registry=r,
        )  # fmt: skip
        self.ready = Gauge("asrforge_gateway_worker_ready", "1 while the worker is ready", ["worker"], registry=r)
        self.cold_start = Histogram(
            "asrforge_gateway_cold_start_seconds", "Worker process start to /ready", buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.exits = Counter(
            "asrforge_gateway_worker_exits_total", "Worker exits by reason (idle, crash, shutdown)", ["reason"],
            registry=r,
        )  # fmt: skip
        self.unavailable = Counter(
            "asrforge_gateway_unavailable_total", "Callers answered 503 because their worker died or did not start",
            registry=r,
        )  # fmt: skip
