"""The server's settings as typed dataclasses, read from ``conf/serving`` (unknown keys are refused, not ignored)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from asrforge.constants import SAMPLE_RATE
from asrforge.errors import ConfigError
from asrforge.subtitles.options import SubtitleOptions
from asrforge.vad_options import VADOptions


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 25
    max_duration_s: float = 3600
    request_timeout_s: float = 600

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class SchedulerSettings:
    max_queue: int = 256
    max_batch_size: int = 8
    max_batch_wait_ms: float = 0
    exact: bool = True
    max_wait_s: float | None = 30
    class_weights: tuple[float, float, float] = (6, 2, 1)  # realtime, stream, batch
    batch_beam_search: bool | None = None  # None: on a GPU only (on a CPU a batch decoded slower than its clips alone)
    later_partial_share: float = 0.05  # engine share of partials after an utterance's first while decodes wait


@dataclass(frozen=True)
class ChunkingSettings:
    max_chunk_s: float | None = None
    stream_max_chunk_s: float = 10


@dataclass(frozen=True)
class RealtimeSettings:
    sample_rate: int = SAMPLE_RATE
    vad_ms: int = 100  # audio gathered before the VAD runs again
    buffer_ms: int = 450  # new audio between two partials once an utterance has sent its first delta
    first_buffer_ms: int = 250  # the same until then
    max_utterance_s: float = 30
    partials: bool = True
    incremental: bool = True
    # Whisper's partials encode the utterance plus this much padding, not kv_reuse's 5 s (finals are full decodes).
    window_margin_s: float | None = 2.0


@dataclass(frozen=True)
class GatewaySettings:
    """``asrforge serve --role gateway``: worker processes, one model each, started on demand (serving/gateway)."""

    workers: int = 1
    min_workers: int = 0
    idle_timeout_s: float | None = 300
    start_timeout_s: float = 300
    stop_timeout_s: float = 10
    retry_after_s: int = 2
    threads_per_worker: int | None = None
    devices: tuple[str, ...] = ()
    log_dir: str | None = None


@dataclass(frozen=True)
class RaySettings:
    """``asrforge serve --role ray``: this app as Ray Serve replicas, scaled on queue depth (serving/ray_serve.py)."""

    address: str | None = None
    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 4
    max_ongoing_requests: int = 64
    upscale_delay_s: float = 5
    downscale_delay_s: float = 120
    num_cpus: float = 1
    num_gpus: float = 0


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    server: str = "uvicorn"
    model_aliases: tuple[str, ...] = (
        "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-transcribe-diarize"
    )  # fmt: skip
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    warmup: bool = True
    repetition_guard: bool = True
    # The decoding policy of a request that sets none: a conf/decode option. "fallback" is faster-whisper's default
    # (beam 5 with temperature fallback); an engine that cannot run it decodes greedily (asrforge/decoding.py).
    decode: str = "fallback"
    limits: Limits = field(default_factory=Limits)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    vad: VADOptions = field(default_factory=VADOptions)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    subtitles: SubtitleOptions = field(default_factory=SubtitleOptions)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    ray: RaySettings = field(default_factory=RaySettings)
    # Text translation back-end for /v1/audio/translations: None, a conf/translation option name, or its node
    # (``_target_`` and fields); the back-end's own config dataclass checks the fields (asrforge/translation).
    translation: str | dict[str, Any] | None = None

    @classmethod
    def from_config(cls, node: DictConfig | Mapping[str, Any] | None) -> ServerSettings:
        raw = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
        settings = _build(cls, raw, "serving")
        extra_keys = tuple(k.strip() for k in os.environ.get("ASRFORGE_API_KEYS", "").split(",") if k.strip())
        if extra_keys:
            settings = replace(settings, api_keys=settings.api_keys + extra_keys)
        return settings


_NESTED: dict[str, type] = {
    "limits": Limits,
    "scheduler": SchedulerSettings,
    "chunking": ChunkingSettings,
    "vad": VADOptions,
    "realtime": RealtimeSettings,
    "subtitles": SubtitleOptions,
    "gateway": GatewaySettings,
    "ray": RaySettings,
}


def _build(cls: type, raw: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown {where} setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if cls is ServerSettings and key in _NESTED:
            value = _build(_NESTED[key], value or {}, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return cls(**values)
