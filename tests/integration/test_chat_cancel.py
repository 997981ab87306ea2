"""A chat nobody reads any more: its generation is cancelled, expires, and frees its slot.

The gateway's real pipeline, slots, Celery app and token streams on the real Redis; the test
plays the llm worker: it takes the queued task from Redis and publishes into its stream.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response
from starlette.types import Message

from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.models import KnowledgeBase
from services.common.schemas import ChatMessage, ChatResponse, ChunkHit, SourcesEvent
from services.common.settings import Settings
from services.common.tasks import llm_queue
from services.gateway.app import build_state
from services.gateway.chat import pipeline, service, whole
from services.gateway.chat.pipeline import ChatPipeline
from services.gateway.openai import service as openai_service
from services.gateway.openai.schemas import OpenAIChatRequest
from services.gateway.state import GatewayState

pytestmark = pytest.mark.integration

PASSAGE = "The PP filter is replaced every six months."


@pytest.fixture
def state(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayState]:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        queue_prefix=f"zhiku-cancel-{uuid.uuid4().hex[:8]}",
        llm_queue_depth=1,
        generation_timeout_s=30,
        stream_send_timeout_s=0.5,
    )
    state = build_state(settings)
    state.backend.heartbeats.publish("llm", {"backend": "cpu"})  # an llm worker is up

    def search(*_args: object) -> list[ChunkHit]:  # the retriever is another service
        return [
            ChunkHit(
                chunk_id=7,
                document_id=3,
                document_name="manual.md",
                position=0,
                text=PASSAGE,
                score=0.9,
                dense_score=0.8,
            )
        ]

    monkeypatch.setattr(pipeline, "search_chunks", search)
    yield state
    state.slots.close()
    client = redis.Redis.from_url(redis_url)
    client.delete(llm_queue(settings), f"{settings.queue_prefix}:heartbeat:llm")
    state.engine.dispose()


def _started(state: GatewayState) -> ChatPipeline:
    kb = KnowledgeBase(id=1, name="kb", embedding_model="m", embedding_dim=4)
    messages = [ChatMessage(role="user", content="How often is the PP filter replaced?")]
    return ChatPipeline(state, kb, messages).start(cast(Any, None))


def _take_task(state: GatewayState) -> tuple[GenerationRequest, dict[str, Any]]:
    """What an llm worker would take from the queue: the request and the message headers."""
    client = redis.Redis.from_url(str(state.settings.redis_url))
    popped = client.brpop([llm_queue(state.settings)], timeout=20)
    assert popped is not None, "no generation was queued"
    message = json.loads(popped[1])
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return GenerationRequest.model_validate(args[0]), message["headers"]


def test_the_queued_generation_expires_with_the_generation_timeout(state: GatewayState) -> None:
    async def chat() -> dict[str, Any]:
        events = _started(state).stream()
        assert isinstance(await anext(events), SourcesEvent)  # sent before generation starts
        first = asyncio.ensure_future(anext(events))
        request, headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="end"))
        await first
        await events.aclose()
        return headers

    headers = asyncio.run(chat())
    expires = datetime.fromisoformat(headers["expires"])
    left_s = (expires - datetime.now(UTC)).total_seconds()
    assert 20 < left_s <= 30


def test_a_stream_left_early_cancels_its_generation_and_frees_the_slot(
    state: GatewayState,
) -> None:
    async def first_token_then_leave() -> GenerationRequest:
        events = _started(state).stream()
        assert isinstance(await anext(events), SourcesEvent)  # sent before generation starts
        first = asyncio.ensure_future(anext(events))
        request, _headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="Every "))
        token = await first
        assert isinstance(token, StreamEvent) and token.text == "Every "
        assert state.slots.in_flight() == 1
        assert not state.streams.cancelled(request.stream_id)
        await events.aclose()  # the client went away
        return request

    request = asyncio.run(first_token_then_leave())
    assert state.streams.cancelled(request.stream_id)
    assert state.slots.in_flight() == 0


def test_a_stream_read_to_its_end_is_not_cancelled(state: GatewayState) -> None:
    async def whole_answer() -> GenerationRequest:
        events = _started(state).stream()
        assert isinstance(await anext(events), SourcesEvent)  # sent before generation starts
        first = asyncio.ensure_future(anext(events))
        request, _headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="Every [1]."))
        state.streams.publish(request.stream_id, StreamEvent(kind="end"))
        await first
        _ = [event async for event in events]
        return request

    request = asyncio.run(whole_answer())
    assert not state.streams.cancelled(request.stream_id)
    assert state.slots.in_flight() == 0


OPENAI_BODY = OpenAIChatRequest.model_validate(
    {"model": "zhiku:kb", "messages": [{"role": "user", "content": "PP filter?"}]}
)


@pytest.mark.parametrize("api", ["chat", "openai"])
def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    state: GatewayState, api: str
) -> None:
    sent: list[Message] = []
    token_frame = b"event: token" if api == "chat" else b'"content":"Every "'

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never disconnects: it just reads nothing
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and token_frame in message.get("body", b""):
            await asyncio.Event().wait()  # its receive window is full: the send never completes

    async def serve() -> GenerationRequest:
        response: Response = (
            service.sse_response(state, _started(state).stream())
            if api == "chat"
            else openai_service.streamed(state, OPENAI_BODY, _started(state))
        )
        scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST"}
        served = asyncio.ensure_future(response(scope, receive, send))
        request, _headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="Every "))
        with pytest.raises(SendTimeoutError):
            await asyncio.wait_for(served, timeout=15)
        return request

    request = asyncio.run(serve())
    assert any(m.get("body") for m in sent)  # the token was on its way when the client stalled
    assert state.streams.cancelled(request.stream_id)
    assert state.slots.in_flight() == 0


@pytest.mark.parametrize("api", ["chat", "openai"])
def test_a_whole_answer_whose_client_left_is_cancelled(state: GatewayState, api: str) -> None:
    async def leave_after_the_first_token() -> tuple[GenerationRequest, object]:
        gone = asyncio.Event()

        async def disconnected() -> bool:
            return gone.is_set()

        whole_answer: Coroutine[Any, Any, object] = (
            service.whole(state, _started(state), None, disconnected)
            if api == "chat"
            else openai_service.whole(OPENAI_BODY, _started(state), disconnected)
        )
        answering = asyncio.ensure_future(whole_answer)
        request, _headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="Every "))
        await asyncio.sleep(0.2)
        assert not state.streams.cancelled(request.stream_id)
        gone.set()  # the client closes its connection before the answer is ready
        await asyncio.sleep(whole.DISCONNECT_CHECK_S * 3)  # seen by the next check
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="six "))
        return request, await asyncio.wait_for(answering, timeout=15)

    request, reply = asyncio.run(leave_after_the_first_token())
    assert reply is None
    assert state.streams.cancelled(request.stream_id)
    assert state.slots.in_flight() == 0


def test_a_whole_answer_is_not_cancelled_while_its_client_waits(state: GatewayState) -> None:
    async def wait_for_it() -> tuple[GenerationRequest, object]:
        async def connected() -> bool:
            return False

        answering = asyncio.ensure_future(service.whole(state, _started(state), None, connected))
        request, _headers = await asyncio.to_thread(_take_task, state)
        state.streams.publish(request.stream_id, StreamEvent(kind="token", text="Every [1]."))
        state.streams.publish(request.stream_id, StreamEvent(kind="end"))
        return request, await asyncio.wait_for(answering, timeout=15)

    request, reply = asyncio.run(wait_for_it())
    assert isinstance(reply, ChatResponse) and reply.answer == "Every [1]."
    assert [c.chunk_id for c in reply.citations] == [7]
    assert not state.streams.cancelled(request.stream_id)
    assert state.slots.in_flight() == 0
