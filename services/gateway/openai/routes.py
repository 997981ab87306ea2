"""OpenAI-compatible endpoints: each knowledge base is a model named 'zhiku:<name>'."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.common.http_errors import error_payload
from services.common.schemas import ChatResponse
from services.gateway.auth import PrincipalDep
from services.gateway.chat import pipeline as chat_service
from services.gateway.deps import SessionDep, StateDep
from services.gateway.knowledge_bases import service as kb_service
from services.gateway.openai.schemas import (
    MODEL_PREFIX,
    OpenAIAssistantMessage,
    OpenAIChatChunk,
    OpenAIChatRequest,
    OpenAIChatResponse,
    OpenAIChoice,
    OpenAIChunkChoice,
    OpenAIDelta,
    OpenAIModel,
    OpenAIModelList,
    OpenAIUsage,
)

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=OpenAIModelList)
def list_models(session: SessionDep, principal: PrincipalDep) -> OpenAIModelList:
    return OpenAIModelList(
        data=[
            OpenAIModel(id=f"{MODEL_PREFIX}{kb.name}", created=int(kb.created_at.timestamp()))
            for kb in kb_service.list_kbs(session, principal)
        ]
    )


def _usage(response: ChatResponse) -> OpenAIUsage:
    prompt, completion = (
        response.usage.get("prompt_tokens", 0),
        response.usage.get("completion_tokens", 0),
    )
    return OpenAIUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def _chunks(
    model: str, events: AsyncIterator[object], completion_id: str, created: int
) -> AsyncIterator[str]:
    def frame(
        delta: OpenAIDelta, finish: bool = False, response: ChatResponse | None = None
    ) -> str:
        chunk = OpenAIChatChunk(
            id=completion_id,
            created=created,
            model=model,
            choices=[OpenAIChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
            citations=response.citations if response else None,
        )
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    yield frame(OpenAIDelta(role="assistant", content=""))
    async for event in events:
        if isinstance(event, ChatResponse):
            yield frame(OpenAIDelta(), finish=True, response=event)
        elif getattr(event, "kind", "") == "token":
            yield frame(OpenAIDelta(content=getattr(event, "text", "")))
        else:
            text, error_type = getattr(event, "text", ""), getattr(event, "error_type", None)
            yield f"data: {error_payload(text, error_type)}\n\n"
            break
    yield "data: [DONE]\n\n"


@router.post("/chat/completions", response_model=OpenAIChatResponse)
def chat_completions(
    body: OpenAIChatRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> OpenAIChatResponse | StreamingResponse:
    kb = kb_service.get_kb(session, body.knowledge_base, principal)
    prepared = chat_service.prepare_chat(
        state, session, kb, body.messages, body.top_k, body.temperature, body.max_tokens
    )
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        events = chat_service.stream_events(state, prepared)
        return StreamingResponse(
            _chunks(body.model, events, completion_id, created), media_type="text/event-stream"
        )
    response = chat_service.answer(state, prepared)
    return OpenAIChatResponse(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[OpenAIChoice(message=OpenAIAssistantMessage(content=response.answer))],
        usage=_usage(response),
        citations=response.citations,
    )
