"""Hand a GenerationRequest to an llm worker, read its events back, or call it off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from sqlalchemy.exc import SQLAlchemyError

from services.common.errors import OverloadedError, ZhikuError
from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.tasks import GENERATE_TASK
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def run_on_worker(
    state: GatewayState, request: GenerationRequest, timeout_s: float | None = None
) -> Iterator[StreamEvent]:
    """Enqueue by task name, then yield the stream's events until its end or error.

    The task expires with the generation timeout: a request still queued by then has no reader
    left, and the worker drops it unstarted.
    """
    try:
        state.celery.send_task(
            GENERATE_TASK,
            args=[request.model_dump(mode="json")],
            expires=state.settings.generation_timeout_s,
        )
    except Exception as exc:  # the broker's own errors vary by transport
        raise OverloadedError(f"the generation queue is unavailable: {exc}") from exc
    yield from state.streams.read(
        request.stream_id, timeout_s or state.settings.generation_timeout_s
    )


def cancel_on_worker(state: GatewayState, stream_id: str) -> None:
    """Ask the llm worker to stop a generation nobody reads any more; best effort."""
    try:
        state.streams.cancel(stream_id)
    except (redis.RedisError, SQLAlchemyError, OSError) as exc:
        # The worker then generates on to its max_tokens, as before cancelling existed.
        logger.warning("stream %s: could not cancel the generation: %s", stream_id, exc)
        return
    logger.info("stream %s: its reader went away, generation cancelled", stream_id)


def short_generation(state: GatewayState, request: GenerationRequest, timeout_s: float) -> str:
    """A short non-streamed generation's whole text (query rewrite, deep chat's plan).

    An error event raises ZhikuError; a generation given up on before its end (timeout, error)
    is called off, so the worker does not go on with it while the chat waits behind it.
    """
    pieces: list[str] = []
    ended = False
    try:
        for event in run_on_worker(state, request, timeout_s):
            ended = event.kind != "token"
            if event.kind == "token":
                pieces.append(event.text)
            elif event.kind == "error":
                raise ZhikuError(event.text)
    finally:
        if not ended:
            cancel_on_worker(state, request.stream_id)
    return "".join(pieces)
