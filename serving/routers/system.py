"""Health, readiness, Prometheus metrics and the model list."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from asrforge.serving.auth import require_api_key
from asrforge.serving.errors import error_responses
from asrforge.serving.protocol import ModelCard, ModelList

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the model is loaded and warmed up",
    responses={503: {"description": "Still loading, or the model failed to load (the reason is in the body)"}},
)
async def ready(request: Request) -> JSONResponse:
    scheduler = request.app.state.scheduler
    if scheduler.ready:
        return JSONResponse({"status": "ready"})
    status = "failed" if scheduler.load_error else "loading"
    return JSONResponse({"status": status, "reason": scheduler.load_error}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/models",
    summary="The models served (one model, under its id and the aliases OpenAI clients send)",
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401),
)
async def list_models(request: Request) -> ModelList:
    state = request.app.state
    return ModelList(
        data=[ModelCard(id=name, created=state.started_at, weights=state.weights) for name in state.model_ids]
    )
