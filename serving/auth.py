"""Optional API keys, sent as OpenAI clients send them: ``Authorization: Bearer <key>``.

WebSocket clients in browsers cannot set headers, so the realtime endpoint also takes the key as OpenAI's
``openai-insecure-api-key.<key>`` subprotocol.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import Request

from asrforge.serving.errors import APIError

INSECURE_KEY_PROTOCOL = "openai-insecure-api-key."


def key_is_valid(presented: str | None, keys: Iterable[str]) -> bool:
    # compare_digest against every key: the time taken does not say how close a guess was.
    matches = [hmac.compare_digest((presented or "").encode(), key.encode()) for key in keys]
    return presented is not None and any(matches)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def websocket_key(headers: dict[str, str] | object, subprotocols: Iterable[str]) -> str | None:
    """The key of a WebSocket handshake: the Bearer header, else the insecure-key subprotocol."""
    token = bearer_token(headers.get("authorization"))  # type: ignore[union-attr]
    if token:
        return token
    return next((p[len(INSECURE_KEY_PROTOCOL) :] for p in subprotocols if p.startswith(INSECURE_KEY_PROTOCOL)), None)


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: 401 in OpenAI's words unless the server has no keys or the request carries one."""
    keys = request.app.state.settings.api_keys
    if not keys:
        return
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise APIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    if not key_is_valid(token, keys):
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")
