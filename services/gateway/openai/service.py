"""The OpenAI chat-completions format over the chat pipeline; each knowledge base is a model."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.orm import Session

from services.common.generation_schemas import StreamEvent
from services.common.http_errors import error_payload
from services.common.schemas import ChatResponse, SourcesEvent
from services.gateway.auth import Principal
from services.gateway.chat.pipeline import ChatOptions, ChatPipeline
from services.gateway.knowledge_bases.service import get_kb, list_kbs
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
from services.gateway.state import GatewayState


def list_models(session: Session, principal: Principal) -> OpenAIModelList:
    """The knowledge bases the caller sees, as models named 'zhiku:<name>'."""
    return OpenAIModelList(
        data=[
            OpenAIModel(id=f"{MODEL_PREFIX}{kb.name}", created=int(kb.created_at.timestamp()))
            for kb in list_kbs(session, principal)
        ]
    )


def complete(
    state: GatewayState, session: Session, body: OpenAIChatRequest, principal: Principal
) -> OpenAIChatResponse | AsyncIterator[str]:
    """The completion, or its chunks as Server-Sent Event lines when streamed."""
    kb = get_kb(session, body.knowledge_base, principal)
    options = ChatOptions(
        top_k=body.top_k, temperature=body.temperature, max_tokens=body.max_tokens
    )
    pipeline = ChatPipeline(state, kb, body.messages, options).start(session)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return _chunks(body.model, pipeline.stream(), completion_id, created)
    response = pipeline.answer()
    return OpenAIChatResponse(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[OpenAIChoice(message=OpenAIAssistantMessage(content=response.answer))],
        usage=_usage(response),
        citations=response.citations,
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
    model: str,
    events: AsyncIterator[StreamEvent | SourcesEvent | ChatResponse],
    completion_id: str,
    created: int,
) -> AsyncIterator[str]:
    def frame(
        delta: OpenAIDelta,
        finish: bool = False,
        response: ChatResponse | None = None,
        sources: SourcesEvent | None = None,
    ) -> str:
        chunk = OpenAIChatChunk(
            id=completion_id,
            created=created,
            model=model,
            choices=[OpenAIChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
            citations=response.citations if response else None,
            zhiku_sources=sources.sources if sources else None,
        )
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    async for event in events:
        if isinstance(event, SourcesEvent):  # always the first: it opens the assistant turn
            yield frame(OpenAIDelta(role="assistant", content=""), sources=event)
        elif isinstance(event, ChatResponse):
            yield frame(OpenAIDelta(), finish=True, response=event)
        elif event.kind == "token":
            yield frame(OpenAIDelta(content=event.text))
        else:
            yield f"data: {error_payload(event.text, event.error_type)}\n\n"
            break
    yield "data: [DONE]\n\n"
