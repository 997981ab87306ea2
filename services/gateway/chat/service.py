"""Chat grounded in a knowledge base: the request's history, the pipeline, the saved turns."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from services.common.errors import ValidationFailedError
from services.common.http_errors import error_payload
from services.common.models import KnowledgeBase
from services.common.schemas import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    SourcesEvent,
    StepEvent,
)
from services.gateway.auth import Principal
from services.gateway.chat.pipeline import ChatEvent, ChatOptions, ChatPipeline
from services.gateway.chat.whole import answer_while_connected
from services.gateway.conversations import service as conversations
from services.gateway.knowledge_bases.service import get_kb, list_kbs
from services.gateway.state import GatewayState


def start(
    state: GatewayState, session: Session, body: ChatRequest, principal: Principal
) -> ChatPipeline:
    """The pipeline run up to its search (so that bad requests fail before any reply)."""
    kb = get_kb(session, body.knowledge_base, principal)
    messages = _with_saved_history(session, kb, body, principal)
    options = ChatOptions(
        top_k=body.top_k,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        mode=body.mode,
        system_prompt=body.system_prompt,
        answer_mode=body.answer_mode,
        searchable=_searchable(session, kb, principal) if body.answer_mode == "deep" else (),
    )
    return ChatPipeline(state, kb, messages, options).start(session)


def streamed(
    state: GatewayState, pipeline: ChatPipeline, conv_id: int | None
) -> EventSourceResponse:
    """The answer's Server-Sent Events; the finished turn is stored with its conversation."""
    events = pipeline.stream_with_steps()
    return sse_response(state, _saved(state, conv_id, pipeline.question, events))


async def whole(
    state: GatewayState,
    pipeline: ChatPipeline,
    conv_id: int | None,
    disconnected: Callable[[], Awaitable[bool]],
) -> ChatResponse | None:
    """The answer at once (stored with its conversation); None when the client left first."""
    reply = await answer_while_connected(pipeline, disconnected)
    if reply is None or conv_id is None:
        return reply
    return await run_in_threadpool(
        conversations.append_turns, state.sessions, conv_id, pipeline.question, reply
    )


def _searchable(session: Session, kb: KnowledgeBase, principal: Principal) -> tuple[str, ...]:
    """The knowledge bases a deep chat's steps may search: the chat's, then the others the
    caller sees (a key scoped to some knowledge bases reaches no other)."""
    others = [public.name for public in list_kbs(session, principal) if public.name != kb.name]
    return (kb.name, *others)


def _with_saved_history(
    session: Session, kb: KnowledgeBase, body: ChatRequest, principal: Principal
) -> list[ChatMessage]:
    """With a conversation the history comes from the database, not from the request."""
    if body.conversation_id is None:
        return body.messages
    conv = conversations.visible(session, body.conversation_id, principal)
    if conv.knowledge_base_id != kb.id:
        raise ValidationFailedError(
            f"conversation {conv.id} belongs to another knowledge base than '{kb.name}'"
        )
    return [*conversations.history(conv), body.messages[-1]]


async def _saved(
    state: GatewayState,
    conversation_id: int | None,
    question: str,
    events: AsyncGenerator[ChatEvent, None],
) -> AsyncGenerator[ChatEvent, None]:
    """Store the finished turn before the end event leaves, so a reload shows it."""
    # aclosing: a response closed early closes the pipeline's stream now, not when collected.
    async with aclosing(events):
        async for event in events:
            if isinstance(event, ChatResponse) and conversation_id is not None:
                event = await run_in_threadpool(
                    conversations.append_turns, state.sessions, conversation_id, question, event
                )
            yield event


def sse_response(
    state: GatewayState, events: AsyncGenerator[ChatEvent, None]
) -> EventSourceResponse:
    """The events as SSE; a client that reads nothing for the send timeout is dropped.

    Dropping it closes the pipeline's stream: the generation is cancelled, its slot given back.
    """
    return EventSourceResponse(_sse(events), send_timeout=state.settings.stream_send_timeout_s)


async def _sse(
    events: AsyncGenerator[ChatEvent, None],
) -> AsyncGenerator[ServerSentEvent, None]:
    """Deep ``step``s, ``sources`` (before generation), ``token``s, then ``end`` or ``error``."""
    async with aclosing(events):
        async for event in events:
            yield _server_sent(event)


def _server_sent(event: ChatEvent) -> ServerSentEvent:
    if isinstance(event, StepEvent):
        return ServerSentEvent(event="step", data=event.model_dump_json())
    if isinstance(event, SourcesEvent):
        return ServerSentEvent(event="sources", data=event.model_dump_json())
    if isinstance(event, ChatResponse):
        return ServerSentEvent(event="end", data=event.model_dump_json())
    if event.kind == "token":
        return ServerSentEvent(
            event="token", data=json.dumps({"text": event.text}, ensure_ascii=False)
        )
    return ServerSentEvent(event="error", data=error_payload(event.text, event.error_type))
