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
import time
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.settings import Settings

logger = logging.getLogger(__name__)

# JSON requests (chat, search, ...) carry text; a megabyte is far beyond any real one.
JSON_BODY_LIMIT = 1 * 2**20
# Multipart framing around the files; the files themselves are limited by max_request_mb.
MULTIPART_SLACK = 1 * 2**20
LIMITED_PREFIXES = ("/api/", "/v1/")
_MAX_LOCAL_BUCKETS = 10_000


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


class Limiter(Protocol):
    async def hit(self, ident: str) -> float:
        """Count one request; 0 when allowed, else the seconds to wait."""


@dataclass
class _Bucket:
    tokens: float
    at: float


class LocalLimiter:
    """A token bucket per caller in this process: bursts up to a minute's allowance."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.buckets: dict[str, _Bucket] = {}

    async def hit(self, ident: str) -> float:
        now = time.monotonic()
        if len(self.buckets) > _MAX_LOCAL_BUCKETS:
            self.buckets.clear()  # forgetting idle callers only ever lets requests through
        bucket = self.buckets.setdefault(ident, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class RedisLimiter:
    """A per-minute window counted in Redis, shared by every gateway of a deployment."""

    def __init__(self, url: str, prefix: str, per_minute: int) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=1)
        self.prefix = f"{prefix}:ratelimit"
        self.per_minute = per_minute

    async def hit(self, ident: str) -> float:
        now = time.time()
        window = int(now // 60)
        key = f"{self.prefix}:{ident}:{window}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except redis.RedisError as exc:
            # A Redis outage already fails what needs Redis; limits should not fail the rest.
            logger.warning("rate limit not checked, Redis unavailable: %s", exc)
            return 0.0
        return 0.0 if int(count) <= self.per_minute else (window + 1) * 60 - now


def make_limiter(settings: Settings) -> Limiter:
    if settings.redis_url:
        per_minute = settings.rate_limit_per_minute
        return RedisLimiter(settings.redis_url, settings.queue_prefix, per_minute)
    return LocalLimiter(settings.rate_limit_per_minute)


def caller_identity(scope: Scope) -> str:
    """The API key (hashed: the raw key never sits in a dict or in Redis), else the client IP."""
    auth = _header(scope, b"authorization")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return "key:" + hashlib.sha256(auth[7:].strip().encode()).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (str(client[0]) if client else "unknown")


class RateLimitMiddleware:
    """429 ``overloaded`` with Retry-After once a caller passes rate_limit_per_minute."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limiter = make_limiter(settings)
        self.per_minute = settings.rate_limit_per_minute

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
