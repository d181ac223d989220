"""``create_app(cfg)``: the OpenAI-compatible FastAPI app around one engine owned by the inference scheduler."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from omegaconf import DictConfig, OmegaConf

from asrforge.combination import Combination
from asrforge.config import decode_policy
from asrforge.engines.base import BaseEngine
from asrforge.engines.weights import RANDOM
from asrforge.errors import RefusedCombinationError
from asrforge.optimizations import compose, make_plugins
from asrforge.serving.errors import install_error_handlers
from asrforge.serving.limits import UploadLimit
from asrforge.serving.metrics import RequestTimer, ServerMetrics
from asrforge.serving.protocol import add_component_schemas
from asrforge.serving.routers import audio, realtime, system
from asrforge.serving.scheduler import InferenceScheduler
from asrforge.serving.service import TranscriptionService
from asrforge.serving.settings import ServerSettings
from asrforge.serving.stream_engine import check_window_margin, streaming_engine
from asrforge.serving.translation import build_translator
from asrforge.winner import resolve_combination

log = logging.getLogger(__name__)
REPETITION_GUARD = "repetition_guard"

DESCRIPTION = """
Speech recognition behind the OpenAI audio API: the official `openai` client works unchanged
(`base_url="http://HOST:PORT/v1"`).

* `POST /v1/audio/transcriptions`, `POST /v1/audio/translations`: multipart upload, response formats
  `json`, `text`, `srt`, `vtt`, `verbose_json`; `stream=true` gives server-sent events
  (`transcript.text.delta` per finished chunk, then `transcript.text.done`).
* `GET /v1/realtime` (WebSocket): PCM16 frames in, partial and final transcripts out; see docs/realtime.md.
* Errors are OpenAI's JSON: `{"error": {"message", "type", "param", "code"}}` with a 4xx status.
"""


def create_app(cfg: DictConfig | Mapping[str, Any] | None = None, engine: BaseEngine | None = None) -> FastAPI:
    """The app for the serve config ``cfg`` (conf/serve.yaml). ``engine``, when given, is served as it is (tests
    share one loaded engine); otherwise the scheduler's thread loads the configured combination."""
    cfg = OmegaConf.create(dict(cfg or {})) if not isinstance(cfg, DictConfig) else cfg
    settings = ServerSettings.from_config(cfg.get("serving"))
    decode_policy(settings.decode)  # an unknown policy name fails here, with the known ones, not at the first request
    if engine is not None:
        if settings.repetition_guard and REPETITION_GUARD not in engine.applied_plugins:
            engine = compose(engine, make_plugins([REPETITION_GUARD]))
        source: BaseEngine | Any = engine
        model_name, weights, origin = engine.model_name, engine.weights, "given engine"
    else:
        combination, origin = served_combination(cfg, settings)
        reason = combination.refusal()
        if reason:
            raise RefusedCombinationError(reason)
        source, model_name, weights = combination.load, combination.model_name, combination.weights
        plugins = ", ".join(combination.plugins) or "no plugins"
        log.info("serving %s, weights %s, with %s (%s)", model_name, weights, plugins, origin)
    if weights.startswith(RANDOM):
        log.warning(
            "SERVING RANDOM WEIGHTS (%s): %s transcribes noise; set engine.model to a checkpoint", weights, model_name
        )
    metrics = ServerMetrics()
    # The realtime streaming engine is made before the server is ready (a shallow copy: no model is loaded twice).
    realtime_settings = settings.realtime
    check_window_margin(realtime_settings.window_margin_s)
    prepare = functools.partial(
        streaming_engine,
        incremental=realtime_settings.incremental,
        window_margin_s=realtime_settings.window_margin_s,
    )
    scheduler = InferenceScheduler(source, settings.scheduler, metrics, warmup=settings.warmup, prepare=prepare)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()

    app = FastAPI(title="asrforge", version=_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.scheduler = scheduler
    app.state.service = TranscriptionService(scheduler, settings)
    app.state.weights = weights
    app.state.model_ids = [model_name, *[alias for alias in settings.model_aliases if alias != model_name]]
    app.state.served_models = frozenset(app.state.model_ids)
    app.state.started_at = int(time.time())
    app.state.origin = origin
    app.state.translator_config, app.state.translator = build_translator(settings)  # serving.translation

    install_error_handlers(app)
    app.include_router(audio.router)
    app.include_router(realtime.router)
    app.include_router(system.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(UploadLimit, max_bytes=settings.limits.max_upload_bytes)
    app.add_middleware(RequestTimer, metrics=metrics, server_timing=True)  # outermost: a 413 is timed too
    _document_response_models(app)
    return app


def served_combination(cfg: DictConfig, settings: ServerSettings) -> tuple[Combination, str]:
    """The combination a serve config names (or this device's benchmark winner), with the repetition guard the
    server adds; shared with the load test, which must know what the server runs."""
    plugins, engine_node = cfg.get("plugins"), cfg.get("engine")
    combination, origin = resolve_combination(
        OmegaConf.to_container(engine_node, resolve=True) if isinstance(engine_node, DictConfig) else engine_node,
        list(plugins) if plugins is not None else None,
        model=cfg.get("model"),
        device=cfg.get("device"),
        winner_file=cfg.get("winner_file"),
    )
    if settings.repetition_guard and REPETITION_GUARD not in combination.plugins:
        combination.plugins.append(REPETITION_GUARD)
    return combination, origin


def _document_response_models(app: FastAPI) -> None:
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_component_schemas(plain_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asrforge")
    except PackageNotFoundError:
        return "0+unknown"
