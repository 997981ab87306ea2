"""Generation slots on the real Redis: shared by gateways, released, and never leaked."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator

import pytest
import redis

from services.common.backend import create_backend
from services.common.errors import OverloadedError
from services.common.settings import Settings
from services.common.slots import SLOT_TTL_S, RedisSlotBackend, slots_key
from services.gateway.generation_slots import GenerationSlots, create_generation_slots

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_url: str) -> Iterator[Settings]:
    settings = Settings(redis_url=redis_url, queue_prefix=f"zhiku-slots-{uuid.uuid4().hex[:8]}")
    yield settings
    redis.Redis.from_url(redis_url).delete(slots_key(settings))


@pytest.fixture
def gateways(settings: Settings) -> Iterator[tuple[GenerationSlots, GenerationSlots]]:
    """Two gateways of one deployment."""
    # Each gateway process has its own backend (and Redis pool).
    first = create_generation_slots(create_backend(settings))
    second = create_generation_slots(create_backend(settings))
    yield first, second
    first.close()
    second.close()


def test_the_limit_holds_across_gateways_and_frees_on_release(
    gateways: tuple[GenerationSlots, GenerationSlots],
) -> None:
    first, second = gateways
    held = [first.acquire(2, 2), second.acquire(2, 2)]
    with pytest.raises(OverloadedError) as refused:
        first.acquire(2, 2)
    assert refused.value.status_code == 429
    assert refused.value.error_type == "overloaded"
    assert refused.value.headers()["Retry-After"].isdigit()
    assert first.in_flight() == second.in_flight() == 2
    held[0].release()
    held[0].release()  # twice is harmless
    third = second.acquire(2, 2)
    assert first.in_flight() == 2
    third.release()
    held[1].release()
    assert first.in_flight() == 0


def test_a_slot_dropped_without_release_is_released(
    gateways: tuple[GenerationSlots, GenerationSlots],
) -> None:
    first, _ = gateways
    slot = first.acquire(1, 1)
    assert first.in_flight() == 1
    del slot
    gc.collect()
    assert first.in_flight() == 0


def test_slots_of_a_gateway_that_died_expire(
    settings: Settings, gateways: tuple[GenerationSlots, GenerationSlots]
) -> None:
    first, _ = gateways
    client = redis.Redis.from_url(str(settings.redis_url))
    now = int(client.time()[0])
    # What a gateway that stopped refreshing leaves behind: a slot whose expiry has passed.
    client.zadd(slots_key(settings), {"gone-gateway-slot": now - 1})
    slot = first.acquire(1, 1)
    assert first.in_flight() == 1
    assert client.zscore(slots_key(settings), "gone-gateway-slot") is None
    score = client.zscore(slots_key(settings), next(iter(first._held)))
    assert score is not None and now < score <= now + SLOT_TTL_S + 1
    slot.release()


def test_refresh_pushes_the_expiry_of_held_slots_only(
    settings: Settings, gateways: tuple[GenerationSlots, GenerationSlots]
) -> None:
    first, _ = gateways
    slot = first.acquire(3, 3)
    member = next(iter(first._held))
    client = redis.Redis.from_url(str(settings.redis_url))
    client.zadd(slots_key(settings), {member: 0})
    backend = first.backend
    assert isinstance(backend, RedisSlotBackend)
    backend.refresh([member, "released-meanwhile"])
    assert (client.zscore(slots_key(settings), member) or 0) > int(client.time()[0])
    assert client.zscore(slots_key(settings), "released-meanwhile") is None
    slot.release()
