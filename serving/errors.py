"""OpenAI's error shape for every failure: ``{"error": {"message", "type", "param", "code"}}`` with a 4xx status.

Handlers turn request-validation errors, the package's typed errors and Starlette's HTTP errors into that shape, so
a client never sees FastAPI's own ``{"detail": ...}`` body or an HTML page.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from asrforge.errors import AudioDecodeError, UnsupportedOptionError

log = logging.getLogger(__name__)

_TYPE_OF_STATUS = {
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class APIError(Exception):
    """An error a handler raises on purpose; rendered as OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPE_OF_STATUS.get(status, "invalid_request_error" if status < 500 else "server_error")
        self.headers = headers

    def response(self) -> JSONResponse:
        body = ErrorResponse(error=ErrorDetail(message=self.message, type=self.type, param=self.param, code=self.code))
        return JSONResponse(body.model_dump(), status_code=self.status, headers=self.headers)


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries documenting the error JSON for ``statuses``."""
    described = {
        400: "Bad input: no file, empty/corrupt/non-audio bytes, unknown parameter or value, audio too long",
        401: "Missing or wrong API key (when the server has keys)",
        404: "Unknown model",
        413: "Upload larger than the server's limit",
        429: "Queue full: retry after the Retry-After header's seconds",
        503: "The model failed to load (the reason is in the message)",
        504: "The request ran past the server's request timeout",
    }
    return {status: {"model": ErrorResponse, "description": described[status]} for status in statuses}


def install_error_handlers(app: FastAPI, engine_errors: bool = True) -> None:
    """OpenAI error JSON for every failure; ``engine_errors=False`` leaves out the scheduler's errors, whose module
    imports torch (the gateway loads no engine and stays small)."""
    if engine_errors:
        _install_engine_error_handlers(app)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError) -> JSONResponse:
        return error.response()

    @app.exception_handler(AudioDecodeError)
    async def _audio_error(request: Request, error: AudioDecodeError) -> JSONResponse:
        return APIError(400, f"Invalid audio file: {error}", param="file", code="invalid_audio").response()

    @app.exception_handler(UnsupportedOptionError)
    async def _option_error(request: Request, error: UnsupportedOptionError) -> JSONResponse:
        return APIError(400, str(error), param=error.param, code="unsupported_value").response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "header", "path")]
        param = ".".join(location) or None
        message = first.get("msg", "invalid request")
        if first.get("type") == "missing":
            message = f"Missing required parameter: '{param}'."
        elif param:
            message = f"Invalid value for '{param}': {message}"
        return APIError(400, message, param=param, code="invalid_value").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return APIError(error.status_code, str(error.detail), headers=getattr(error, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return APIError(500, "The server had an error while processing your request.", type="server_error").response()


def _install_engine_error_handlers(app: FastAPI) -> None:
    from asrforge.serving.scheduler import NotReadyError, QueueFullError

    @app.exception_handler(QueueFullError)
    async def _queue_full(request: Request, error: QueueFullError) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after_s)}
        return APIError(429, str(error), code="rate_limit_exceeded", headers=headers).response()

    @app.exception_handler(NotReadyError)
    async def _not_ready(request: Request, error: NotReadyError) -> JSONResponse:
        return APIError(503, str(error), type="server_error", code="model_not_ready").response()
