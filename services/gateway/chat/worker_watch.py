"""Generation that fails fast when no llm worker is left to answer, instead of waiting it out."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis

from services.common import heartbeat
from services.common.errors import GenerationTimeoutError, NotReadyError
from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.gateway.chat.worker_calls import cancel_on_worker, run_on_worker
from services.gateway.generation_slots import Slot
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

# How long the stream may stay silent before the gateway looks at the workers' heartbeats.
CHECK_EVERY_S = 5.0
# A busy worker on an overloaded machine can miss a beat: only a beat missing this much longer
# than its TTL means the worker is gone.
MISSING_GRACE_S = heartbeat.TTL_S
NO_WORKER = "no llm worker is running; start one (or wait for it to come back) and retry"
WORKER_LOST = "the llm worker stopped while answering; retry the question"


def live_llm_workers(state: GatewayState) -> set[str]:
    """Ids of the llm workers that beat in the last heartbeat.TTL_S seconds."""
    try:
        beats = state.backend.heartbeats.alive("llm")
    except (redis.RedisError, OSError) as exc:
        raise NotReadyError(f"Redis is unavailable, no llm worker can be reached: {exc}") from exc
    return {str(beat.get("worker")) for beat in beats}


def hold_generation_slot(state: GatewayState) -> Slot | None:
    """A place among the chats for the llm workers; OverloadedError beyond the queue depth."""
    depth = state.settings.llm_queue_depth
    if not depth:
        return None
    return state.slots.acquire(depth * max(1, len(live_llm_workers(state))), depth)


def watched_generation(state: GatewayState, request: GenerationRequest) -> Iterator[StreamEvent]:
    """The worker's events; NotReadyError once every worker that could answer is gone.

    Left before its end (the client went away, a timeout, a lost worker), the generation is
    cancelled, so the worker stops instead of generating for nobody.
    """
    workers = live_llm_workers(state)
    if not workers:
        raise NotReadyError(NO_WORKER)
    ended = False
    try:
        for event in _relayed(state, request, workers):
            ended = event.kind != "token"
            yield event
    finally:
        if not ended:
            cancel_on_worker(state, request.stream_id)


def _relayed(
    state: GatewayState, request: GenerationRequest, workers: set[str]
) -> Iterator[StreamEvent]:
    last_id: str | None = None
    quiet_since, missing_since = time.monotonic(), None
    events = run_on_worker(state, request, CHECK_EVERY_S)
    while True:
        try:
            for event in _redis_errors_as_not_ready(events):
                last_id, quiet_since = event.id, time.monotonic()
                yield event
            return
        except GenerationTimeoutError:
            silent_s = time.monotonic() - quiet_since
            if silent_s >= state.settings.generation_timeout_s:
                raise
            # The task is not replayed (acks_late is off), so it died with the workers that were
            # up when it was queued: once none of them is left, nobody will answer.
            live = live_llm_workers(state)
            if workers & live:
                missing_since = None
            elif missing_since is None:
                missing_since = time.monotonic()
            elif time.monotonic() - missing_since >= MISSING_GRACE_S:
                logger.warning("stream %s: its llm worker(s) stopped", request.stream_id)
                raise NotReadyError(WORKER_LOST if live else NO_WORKER) from None
        # Read on from the last event relayed, not from the first.
        events = state.streams.read(request.stream_id, CHECK_EVERY_S, after=last_id)


def _redis_errors_as_not_ready(events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    try:
        yield from events
    except redis.RedisError as exc:
        raise NotReadyError(f"the token stream (Redis) is unavailable: {exc}") from exc
