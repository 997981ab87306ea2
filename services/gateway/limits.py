"""Request limits: body size (413) in front of every route, and requests per caller (429).

The body limit is a plain ASGI middleware so that a refused request costs no parsing: an
oversized body is refused from its Content-Length before a byte is read, or as soon as the
streamed bytes pass the limit. Requests are counted once the caller is known (services.gateway.
auth): per web user or API key, so that a made-up bearer string buys no fresh allowance and
web users behind one address each get their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import OverloadedError
from services.common.rate_limits import Limiter

logger = logging.getLogger(__name__)

# JSON requests (chat, search, ...) carry text; a megabyte is far beyond any real one.
JSON_BODY_LIMIT = 1 * 2**20
# Multipart framing around the files; the files themselves are limited by max_request_mb.
MULTIPART_SLACK = 1 * 2**20


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


async def check_rate(limiter: Limiter | None, per_minute: int, ident: str) -> None:
    """Count one request of ``ident``; 429 ``overloaded`` with Retry-After past the limit."""
    if limiter is None:
        return
    wait = await limiter.hit(ident)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise OverloadedError(
            f"more than {per_minute} requests a minute; retry in {retry} s", retry_after_s=retry
        )
