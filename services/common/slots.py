"""Where the generation slots are counted: in this process, or in Redis for every gateway.

:class:`services.gateway.generation_slots.GenerationSlots` hands the slots out; these stores
hold them. With Redis the slots are members of one sorted set scored by when they expire, on
Redis's clock: a gateway pushes the expiry of its slots forward every few seconds, so the slots
of a gateway that died drop out after ``SLOT_TTL_S``.
"""

from __future__ import annotations

import threading
from typing import Protocol

import redis

from services.common.settings import Settings

SLOT_TTL_S = 30

# Drop expired slots, then add one unless the set is full; Redis's clock scores every gateway.
_ACQUIRE = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return -held end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return held + 1
"""
_REFRESH = """
local now = tonumber(redis.call('TIME')[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 0
"""


class SlotBackend(Protocol):
    expires: bool  # slots drop out unless refresh() keeps pushing their expiry forward

    def try_add(self, member: str, limit: int) -> int:
        """Hold one more slot as ``member``: the count with it, or minus the count when full."""

    def remove(self, member: str) -> None: ...

    def count(self) -> int:
        """Slots held now, by every gateway."""

    def refresh(self, members: list[str]) -> None:
        """Keep ``members`` (those still held) from expiring for another ``SLOT_TTL_S``."""


class LocalSlotBackend:
    """One gateway process (the embedded shape): a set in memory."""

    expires = False

    def __init__(self) -> None:
        self._members: set[str] = set()
        self._lock = threading.Lock()

    def try_add(self, member: str, limit: int) -> int:
        with self._lock:
            if len(self._members) >= limit:
                return -len(self._members)
            self._members.add(member)
            return len(self._members)

    def remove(self, member: str) -> None:
        with self._lock:
            self._members.discard(member)

    def count(self) -> int:
        return len(self._members)

    def refresh(self, members: list[str]) -> None:
        """Nothing to do: these slots never expire."""


class RedisSlotBackend:
    """Every gateway of a deployment: one sorted set of slots scored by their expiry."""

    expires = True

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key
        self._acquire = client.register_script(_ACQUIRE)
        self._refresh = client.register_script(_REFRESH)

    def try_add(self, member: str, limit: int) -> int:
        return int(self._acquire(keys=[self.key], args=[limit, SLOT_TTL_S, member]))

    def remove(self, member: str) -> None:
        self.client.zrem(self.key, member)

    def count(self) -> int:
        now = int(self.client.time()[0])
        return int(self.client.zcount(self.key, f"({now}", "+inf"))

    def refresh(self, members: list[str]) -> None:
        """Push the expiry of ``members`` (those still held) ``SLOT_TTL_S`` ahead."""
        self._refresh(keys=[self.key], args=[SLOT_TTL_S, *members])


def slots_key(settings: Settings) -> str:
    """The sorted set of one deployment's slots."""
    return f"{settings.queue_prefix}:llm:slots"
