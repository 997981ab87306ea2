"""Requests per caller and minute: a token bucket in this process, or a window in Redis."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

_MAX_LOCAL_BUCKETS = 10_000


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
