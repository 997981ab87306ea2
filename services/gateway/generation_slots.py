"""How many chats are waiting for or running on the llm workers, bounded by the queue depth.

Each chat that may need the model holds one slot from before its query rewrite until its last
token. With Redis the slots are members of one sorted set shared by every gateway, scored by
when they expire: the gateway that holds a slot pushes its expiry forward every
``REFRESH_EVERY_S``, so the slots of a gateway that died drop out after ``SLOT_TTL_S``. A slot
is released when its chat ends, is cancelled, or is garbage-collected without being released.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Protocol

import redis

from services.common.errors import OverloadedError
from services.common.settings import Settings

logger = logging.getLogger(__name__)

SLOT_TTL_S = 30
REFRESH_EVERY_S = 10.0
RETRY_AFTER_S = 5

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
    def try_add(self, member: str, limit: int) -> int:
        """Hold one more slot as ``member``: the count with it, or minus the count when full."""

    def remove(self, member: str) -> None: ...

    def count(self) -> int:
        """Slots held now, by every gateway."""


class Slot:
    """One held slot; ``release()`` may be called any number of times, ``with`` releases it."""

    def __init__(self, slots: GenerationSlots, member: str) -> None:
        self._release = weakref.finalize(self, slots._remove, member)

    def release(self) -> None:
        self._release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class GenerationSlots:
    """Hand out slots up to a limit; 429 ``overloaded`` beyond it."""

    def __init__(self, backend: SlotBackend) -> None:
        self.backend = backend
        self._held: set[str] = set()  # this process's slots, kept alive by keep_alive()
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def acquire(self, limit: int, per_worker: int) -> Slot:
        """A slot, or OverloadedError when ``limit`` slots are held already."""
        member = uuid.uuid4().hex
        count = self.backend.try_add(member, limit)
        if count < 0:
            raise OverloadedError(
                f"{-count} chats are already waiting for or running on the llm workers "
                f"(at most {per_worker} per worker, {limit} in all); retry in {RETRY_AFTER_S} s",
                retry_after_s=RETRY_AFTER_S,
            )
        with self._lock:
            self._held.add(member)
        return Slot(self, member)

    def in_flight(self) -> int:
        """Slots held now by every gateway."""
        return self.backend.count()

    def keep_alive(self, refresh: Callable[[list[str]], None]) -> None:
        """Refresh this process's slots every REFRESH_EVERY_S until close()."""
        while not self._closed.wait(REFRESH_EVERY_S):
            with self._lock:
                members = list(self._held)
            if members:
                try:
                    refresh(members)
                except redis.RedisError as exc:
                    logger.warning("generation slots not refreshed: %s", exc)

    def close(self) -> None:
        self._closed.set()

    def _remove(self, member: str) -> None:
        with self._lock:
            self._held.discard(member)
        try:
            self.backend.remove(member)
        except redis.RedisError as exc:
            # The slot expires on its own once this process stops refreshing it.
            logger.warning("generation slot not released, it expires in %d s: %s", SLOT_TTL_S, exc)


class LocalSlotBackend:
    """One gateway process (the embedded shape): a set in memory."""

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


class RedisSlotBackend:
    """Every gateway of a deployment: one sorted set of slots scored by their expiry."""

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
    return f"{settings.queue_prefix}:llm:slots"


def create_generation_slots(settings: Settings) -> GenerationSlots:
    """Shared through Redis when configured; else counted in this process."""
    if not settings.redis_url:
        return GenerationSlots(LocalSlotBackend())
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
    backend = RedisSlotBackend(client, slots_key(settings))
    slots = GenerationSlots(backend)
    thread = threading.Thread(
        target=slots.keep_alive, args=(backend.refresh,), name="generation-slots", daemon=True
    )
    thread.start()
    return slots
