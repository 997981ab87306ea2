"""Generation slots in one process (the embedded gateway)."""

from __future__ import annotations

import gc

import pytest

from services.common.backend import create_backend
from services.common.errors import OverloadedError
from services.common.settings import Settings
from services.gateway.generation_slots import create_generation_slots


def test_slots_up_to_the_limit_then_overloaded_until_one_is_released() -> None:
    slots = create_generation_slots(create_backend(Settings(redis_url=None)))
    first, second = slots.acquire(2, 1), slots.acquire(2, 1)
    with pytest.raises(OverloadedError, match="2 chats") as refused:
        slots.acquire(2, 1)
    assert refused.value.headers() == {"Retry-After": "5"}
    first.release()
    third = slots.acquire(2, 1)
    second.release()
    third.release()
    assert slots.in_flight() == 0


def test_a_dropped_slot_is_released() -> None:
    slots = create_generation_slots(create_backend(Settings(redis_url=None)))
    slot = slots.acquire(1, 1)
    del slot
    gc.collect()
    assert slots.in_flight() == 0


def test_a_slot_used_with_with_is_released_however_the_block_ends() -> None:
    slots = create_generation_slots(create_backend(Settings(redis_url=None)))
    with slots.acquire(1, 1):
        assert slots.in_flight() == 1
    assert slots.in_flight() == 0
    with pytest.raises(RuntimeError), slots.acquire(1, 1):
        raise RuntimeError("the chat failed")
    assert slots.in_flight() == 0
