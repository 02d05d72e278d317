"""Safe defaults at the door: the API key and the request-body limit, as one ASGI middleware.

With an API key set, every request needs ``Authorization: Bearer KEY`` (401 otherwise). The
monitor page, which a browser opens by address, may pass it once as ``?key=KEY``; its script
then sends the header. Bodies larger than ``Limits.max_body_bytes`` get 413 before any parsing.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from persona.app.serve.errors import ApiError, error_response

PAGES = ("/", "/monitor")


@dataclass(frozen=True)
class Limits:
    """Per-request limits (docs/serve.md)."""

    max_body_bytes: int = 1 << 20
    max_tokens: int = 1024  # cap on max_tokens; also the default when a request gives none
    default_max_tokens: int = 256
    max_n: int = 8
    max_pending: int = 256  # calls in flight at once; more get 429

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_tokens", "default_max_tokens", "max_n", "max_pending"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


class Guard:
    """ASGI middleware: API key check and body-size limit for every HTTP request."""

    def __init__(self, app: ASGIApp, api_key: str | None, limits: Limits) -> None:
        self.app = app
        self.api_key = api_key
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.api_key and not self._authorized(scope):
            err = ApiError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer KEY'",
                code="invalid_api_key",
            )
            await error_response(err)(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        too_big = ApiError(
            413,
            f"request body larger than {self.limits.max_body_bytes} bytes",
            code="request_too_large",
        )
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.limits.max_body_bytes
        ):
            await error_response(too_big)(scope, receive, send)
            return
        body, more = b"", True
        while more:  # buffer the body (bounded) so the app never reads past the limit
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limits.max_body_bytes:
                await error_response(too_big)(scope, receive, send)
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect, for streaming responses

        await self.app(scope, replay, send)

    def _authorized(self, scope: Scope) -> bool:
        assert self.api_key is not None
        given = None
        auth = _header(scope, b"authorization")
        if auth and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif scope.get("method") == "GET" and scope.get("path") in PAGES:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("key") or [None])[0]
        return given is not None and hmac.compare_digest(given.encode(), self.api_key.encode())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
