"""Request limits in front of every route: body size (413) and requests per key or IP (429).

Both are plain ASGI middlewares so that a refused request costs no parsing: an oversized body
is refused from its Content-Length before a byte is read, or as soon as the streamed bytes pass
the limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.rate_limits import Limiter

logger = logging.getLogger(__name__)

# JSON requests (chat, search, ...) carry text; a megabyte is far beyond any real one.
JSON_BODY_LIMIT = 1 * 2**20
# Multipart framing around the files; the files themselves are limited by max_request_mb.
MULTIPART_SLACK = 1 * 2**20
LIMITED_PREFIXES = ("/api/", "/v1/", "/mcp")


async def send_error(
    send: Send, status: int, error: str, error_type: str, headers: dict[str, str] | None = None
) -> None:
    """Answer with zhiku's error body from inside an ASGI middleware."""
    body = json.dumps({"error": error, "error_type": error_type}, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over the limit: uploads up to max_request_mb, anything else 1 MiB."""

    def __init__(self, app: ASGIApp, max_request_mb: float, max_upload_mb: float) -> None:
        self.app = app
        mb = max(max_request_mb, max_upload_mb)
        self.upload_limit = int(mb * 2**20) + MULTIPART_SLACK

    def _limit(self, scope: Scope) -> int:
        multipart = _header(scope, b"content-type").startswith("multipart/")
        return self.upload_limit if multipart else JSON_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        message = f"the request body is larger than the {limit / 2**20:.0f} MB limit"
        length = _header(scope, b"content-length")
        if length.isdigit() and int(length) > limit:
            await send_error(send, 413, message, "payload_too_large")
            return
        state = {"received": 0, "too_large": False, "started": False}

        async def limited_receive() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                state["received"] = int(state["received"]) + len(msg.get("body", b""))
                if int(state["received"]) > limit:
                    state["too_large"] = True
                    raise _BodyTooLarge
            return msg

        async def guarded_send(msg: Message) -> None:
            # Whatever the app makes of the cut-off body (a parse error) is replaced by the 413.
            if not state["too_large"]:
                state["started"] = True
                await send(msg)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if state["too_large"] and not state["started"]:
            await send_error(send, 413, message, "payload_too_large")


def caller_identity(scope: Scope) -> str:
    """The API key (hashed: the raw key never sits in a dict or in Redis), else the client IP."""
    auth = _header(scope, b"authorization")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return "key:" + hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (str(client[0]) if client else "unknown")


class RateLimitMiddleware:
    """429 ``overloaded`` with Retry-After once a caller passes rate_limit_per_minute."""

    def __init__(self, app: ASGIApp, limiter: Limiter, per_minute: int) -> None:
        self.app = app
        self.limiter = limiter
        self.per_minute = per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(LIMITED_PREFIXES):
            wait = await self.limiter.hit(caller_identity(scope))
            if wait > 0:
                retry = max(1, math.ceil(wait))
                await send_error(
                    send,
                    429,
                    f"more than {self.per_minute} requests a minute; retry in {retry} s",
                    "overloaded",
                    {"Retry-After": str(retry)},
                )
                return
        await self.app(scope, receive, send)
