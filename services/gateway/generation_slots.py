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

import redis

from services.common.backend import Backend
from services.common.errors import OverloadedError
from services.common.slots import SLOT_TTL_S, SlotBackend

logger = logging.getLogger(__name__)

REFRESH_EVERY_S = 10.0
RETRY_AFTER_S = 5


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


def create_generation_slots(backend: Backend) -> GenerationSlots:
    """Slots in this deployment's store, kept from expiring while held if the store needs it."""
    store = backend.slot_store()
    slots = GenerationSlots(store)
    if store.expires:
        thread = threading.Thread(
            target=slots.keep_alive, args=(store.refresh,), name="generation-slots", daemon=True
        )
        thread.start()
    return slots
