"""``create_gateway_app(cfg, overrides)``: the OpenAI audio API in front of worker processes; it loads no model.

Every ``/v1/...`` request (transcriptions, translations, SSE, the model list) and every ``/v1/realtime`` session is
forwarded to the worker with the fewest in flight; each worker is ``asrforge serve --role worker`` with the same
serve overrides, so what a worker answers is what the single-process server answers. The gateway checks API keys
itself (an unauthenticated caller must not be able to start a worker) and its own upload limit.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from omegaconf import DictConfig, OmegaConf
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from asrforge.serving.auth import key_is_valid, require_api_key, websocket_key
from asrforge.serving.errors import install_error_handlers
from asrforge.serving.gateway.metrics import GatewayMetrics
from asrforge.serving.gateway.pool import WorkerPool
from asrforge.serving.gateway.proxy import forward_http
from asrforge.serving.gateway.realtime_proxy import POLICY_VIOLATION, relay_realtime
from asrforge.serving.limits import UploadLimit
from asrforge.serving.metrics import RequestTimer
from asrforge.serving.settings import ServerSettings

router = APIRouter()
ANSWER_MARGIN_S = 30


@router.get("/health", tags=["system"], summary="Liveness: the gateway answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", tags=["system"], summary="Readiness: the always-on workers (min_workers) are ready")
async def ready(request: Request) -> JSONResponse:
    pool: WorkerPool = request.app.state.pool
    status = 200 if pool.ready_count >= pool.settings.min_workers else 503
    return JSONResponse({"status": "ready" if status == 200 else "loading", **pool.describe()}, status_code=status)


@router.get("/gateway/workers", tags=["system"], summary="Each worker: state, pid, in flight, RSS, cold starts")
async def workers(request: Request) -> dict[str, Any]:
    return request.app.state.pool.describe()


@router.get("/metrics", tags=["system"], summary="The gateway's Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.api_route(
    "/v1/{path:path}",
    methods=["GET", "POST"],
    summary="Forwarded to a worker (the OpenAI audio API, see a worker's /docs)",
    dependencies=[Depends(require_api_key)],
)
async def forward(request: Request, path: str) -> Response:
    state = request.app.state
    return await forward_http(request, state.pool, state.settings.gateway.retry_after_s)


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    keys = websocket.app.state.settings.api_keys
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if keys and not key_is_valid(websocket_key(websocket.headers, offered), keys):
        await websocket.close(code=POLICY_VIOLATION, reason="missing or invalid API key")
        return
    await relay_realtime(websocket, websocket.app.state.pool)


def create_gateway_app(
    cfg: DictConfig | Mapping[str, Any] | None = None, worker_overrides: Sequence[str] = ()
) -> FastAPI:
    """The gateway for the serve config ``cfg``; each worker runs ``asrforge serve --role worker`` with
    ``worker_overrides`` (the same Hydra overrides the gateway was started with)."""
    cfg = OmegaConf.create(dict(cfg or {})) if not isinstance(cfg, DictConfig) else cfg
    settings = ServerSettings.from_config(cfg.get("serving"))
    gateway_metrics = GatewayMetrics()
    # The worker answers 504 itself at its request timeout; the gateway gives it a margin beyond that.
    answer_timeout_s = settings.limits.request_timeout_s + ANSWER_MARGIN_S
    pool = WorkerPool(settings.gateway, worker_overrides, gateway_metrics, answer_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.start()
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="asrforge gateway", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = gateway_metrics
    app.state.pool = pool
    app.state.started_at = int(time.time())
    install_error_handlers(app, engine_errors=False)
    app.include_router(router)
    app.add_middleware(UploadLimit, max_bytes=settings.limits.max_upload_bytes)
    app.add_middleware(RequestTimer, metrics=gateway_metrics)  # type: ignore[arg-type]
    return app
