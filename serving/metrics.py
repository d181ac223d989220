"""Prometheus metrics of one app (its own registry, so several apps in one process, as in tests, do not collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: from a 5 ms overhead-only request to a long file.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.request_latency = Histogram(
            "asrforge_request_latency_seconds",
            "Time from request received to response complete, by endpoint",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("asrforge_queue_depth", "Audio chunks waiting for the inference executor", registry=r)
        self.batch_size = Histogram(
            "asrforge_batch_size", "Chunks decoded together", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.inference_seconds = Histogram(
            "asrforge_inference_seconds", "Engine time per batch", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.audio_seconds = Counter("asrforge_audio_seconds_total", "Seconds of audio transcribed", registry=r)
        self.real_time_factor = Histogram(
            "asrforge_real_time_factor",
            "Engine seconds per second of audio, per batch (< 1 is faster than real time)",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
            registry=r,
        )
        self.rejected = Counter("asrforge_rejected_total", "Requests refused with 429 (queue full)", registry=r)
        self.realtime_sessions = Gauge("asrforge_realtime_sessions", "Open WebSocket sessions", registry=r)
