"""The gateway's own Prometheus metrics (workers keep theirs: scrape them at the URLs /gateway/workers lists)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # Same name and labels as a single-process server's, so one dashboard reads both.
        self.request_latency = Histogram(
            "asrforge_request_latency_seconds",
            "Time from request received to response complete, by endpoint",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "asrforge_gateway_in_flight", "Requests and sessions forwarded to a worker, not yet answered", ["worker"],
            registry=r,
        )  # fmt: skip
        self.ready = Gauge("asrforge_gateway_worker_ready", "1 while the worker is ready", ["worker"], registry=r)
        self.cold_start = Histogram(
            "asrforge_gateway_cold_start_seconds", "Worker process start to /ready", buckets=_LATENCY_BUCKETS,
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
