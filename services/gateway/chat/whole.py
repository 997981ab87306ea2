"""A whole (non-streamed) answer whose client may leave before it is ready.

The answer is collected from the pipeline's stream while the connection is watched: a client
that goes away closes the stream, which cancels the generation on the llm worker and gives its
slot back, as for a streamed chat left early.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from services.common.errors import UpstreamError
from services.common.generation_schemas import StreamEvent
from services.common.schemas import ChatResponse
from services.gateway.chat.pipeline import ChatEvent, ChatPipeline, stream_error

logger = logging.getLogger(__name__)

# How often the connection is checked while the answer is generated.
DISCONNECT_CHECK_S = 0.5


async def answer_while_connected(
    pipeline: ChatPipeline, disconnected: Callable[[], Awaitable[bool]]
) -> ChatResponse | None:
    """The whole answer, or None once the client has gone (its generation then cancelled).

    Checked per event: the stream is closed at the first token after the client left (a token
    being read in a thread cannot be interrupted).
    """
    gone = asyncio.Event()
    watcher = asyncio.ensure_future(_watch(disconnected, gone))
    try:
        return await _collect(pipeline.stream_with_steps(), gone)
    finally:
        watcher.cancel()


async def _watch(disconnected: Callable[[], Awaitable[bool]], gone: asyncio.Event) -> None:
    while not await disconnected():
        await asyncio.sleep(DISCONNECT_CHECK_S)
    gone.set()


async def _collect(
    events: AsyncGenerator[ChatEvent, None], gone: asyncio.Event
) -> ChatResponse | None:
    async with aclosing(events):  # closing the stream early cancels the generation
        async for event in events:
            if gone.is_set():
                logger.info("chat client went away before its answer: generation cancelled")
                return None
            if isinstance(event, ChatResponse):
                return event
            if isinstance(event, StreamEvent) and event.kind == "error":
                raise stream_error(event)
    raise UpstreamError("the generation ended without an answer")
