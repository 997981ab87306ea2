"""Chat grounded in a knowledge base, whole or streamed as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.common.schemas import ChatRequest, ChatResponse, StreamEvent
from services.gateway import chat_service, kb_service
from services.gateway.deps import SessionDep, StateDep
from services.gateway.errors import error_payload

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
    body: ChatRequest, state: StateDep, session: SessionDep
) -> ChatResponse | EventSourceResponse:
    kb = kb_service.get_kb(session, body.knowledge_base)
    prepared = chat_service.prepare_chat(
        state, session, kb, body.messages, body.top_k, body.temperature, body.max_tokens
    )
    if body.stream:
        return EventSourceResponse(_sse(chat_service.stream_events(state, prepared)))
    return chat_service.answer(state, prepared)
