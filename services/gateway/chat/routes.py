"""Chat grounded in a knowledge base, whole or streamed as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from services.common.errors import ValidationFailedError
from services.common.http_errors import error_payload
from services.common.models import KnowledgeBase
from services.common.schemas import ChatMessage, ChatRequest, ChatResponse, StreamEvent
from services.gateway.auth import Principal, PrincipalDep, ensure_visible
from services.gateway.chat import pipeline as chat_service
from services.gateway.conversations import service as conversation_service
from services.gateway.deps import SessionDep, StateDep
from services.gateway.knowledge_bases import service as kb_service
from services.gateway.state import GatewayState

router = APIRouter(prefix="/api/v1", tags=["chat"])


async def _sse(events: AsyncIterator[StreamEvent | ChatResponse]) -> AsyncIterator[ServerSentEvent]:
    async for event in events:
        if isinstance(event, ChatResponse):
            yield ServerSentEvent(event="end", data=event.model_dump_json())
        elif event.kind == "token":
            yield ServerSentEvent(
                event="token", data=json.dumps({"text": event.text}, ensure_ascii=False)
            )
        else:
            yield ServerSentEvent(event="error", data=error_payload(event.text, event.error_type))


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"}
    },
)
def chat(
    body: ChatRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> ChatResponse | EventSourceResponse:
    kb = kb_service.get_kb(session, body.knowledge_base, principal)
    messages = _with_saved_history(session, kb, body, principal)
    prepared = chat_service.prepare_chat(
        state,
        session,
        kb,
        messages,
        body.top_k,
        body.temperature,
        body.max_tokens,
        mode=body.mode,
        system_prompt=body.system_prompt,
    )
    conv_id = body.conversation_id
    if body.stream:
        events = chat_service.stream_events(state, prepared)
        return EventSourceResponse(_sse(_saved(state, conv_id, prepared.question, events)))
    reply = chat_service.answer(state, prepared)
    if conv_id is None:
        return reply
    return conversation_service.append_turns(state.sessions, conv_id, prepared.question, reply)


def _with_saved_history(
    session: Session, kb: KnowledgeBase, body: ChatRequest, principal: Principal
) -> list[ChatMessage]:
    """With a conversation the history comes from the database, not from the request."""
    if body.conversation_id is None:
        return body.messages
    conv = conversation_service.get_conversation(session, body.conversation_id)
    ensure_visible(principal, conv.knowledge_base_id, f"conversation {conv.id} does not exist")
    if conv.knowledge_base_id != kb.id:
        raise ValidationFailedError(
            f"conversation {conv.id} belongs to another knowledge base than '{kb.name}'"
        )
    return [*conversation_service.history(conv), body.messages[-1]]


async def _saved(
    state: GatewayState,
    conversation_id: int | None,
    question: str,
    events: AsyncIterator[StreamEvent | ChatResponse],
) -> AsyncIterator[StreamEvent | ChatResponse]:
    """Store the finished turn before the end event leaves, so a reload shows it."""
    async for event in events:
        if isinstance(event, ChatResponse) and conversation_id is not None:
            event = await run_in_threadpool(
                conversation_service.append_turns, state.sessions, conversation_id, question, event
            )
        yield event
