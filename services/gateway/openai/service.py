"""The OpenAI chat-completions format over the chat pipeline; each knowledge base is a model."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing

from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from services.common.generation_schemas import StreamEvent
from services.common.http_errors import error_payload
from services.common.schemas import ChatResponse, SourcesEvent
from services.gateway.auth import Principal
from services.gateway.chat.pipeline import ChatOptions, ChatPipeline
from services.gateway.chat.whole import answer_while_connected
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


def start(
    state: GatewayState, session: Session, body: OpenAIChatRequest, principal: Principal
) -> ChatPipeline:
    """The pipeline run up to its search (so that bad requests fail before any reply)."""
    kb = get_kb(session, body.knowledge_base, principal)
    options = ChatOptions(
        top_k=body.top_k, temperature=body.temperature, max_tokens=body.max_tokens
    )
    return ChatPipeline(state, kb, body.messages, options).start(session)


def streamed(state: GatewayState, body: OpenAIChatRequest, pipeline: ChatPipeline) -> Response:
    """The completion's chunks as Server-Sent Events; a client that reads nothing for the send
    timeout is dropped, which cancels its generation and gives its slot back."""
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    return EventSourceResponse(
        _chunks(body.model, pipeline.stream(), completion_id, created),
        send_timeout=state.settings.stream_send_timeout_s,
        sep="\n",
    )


async def whole(
    body: OpenAIChatRequest, pipeline: ChatPipeline, disconnected: Callable[[], Awaitable[bool]]
) -> OpenAIChatResponse | None:
    """The completion at once; None when the client left first (its generation cancelled)."""
    response = await answer_while_connected(pipeline, disconnected)
    if response is None:
        return None
    return OpenAIChatResponse(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
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
    events: AsyncGenerator[StreamEvent | SourcesEvent | ChatResponse, None],
    completion_id: str,
    created: int,
) -> AsyncIterator[ServerSentEvent]:
    def frame(
        delta: OpenAIDelta,
        finish: bool = False,
        response: ChatResponse | None = None,
        sources: SourcesEvent | None = None,
    ) -> ServerSentEvent:
        chunk = OpenAIChatChunk(
            id=completion_id,
            created=created,
            model=model,
            choices=[OpenAIChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
            citations=response.citations if response else None,
            zhiku_sources=sources.sources if sources else None,
        )
        return ServerSentEvent(data=chunk.model_dump_json(exclude_none=True))

    # aclosing: a response closed early closes the pipeline's stream now, not when collected.
    async with aclosing(events):
        async for event in events:
            if isinstance(event, SourcesEvent):  # always the first: it opens the assistant turn
                yield frame(OpenAIDelta(role="assistant", content=""), sources=event)
            elif isinstance(event, ChatResponse):
                yield frame(OpenAIDelta(), finish=True, response=event)
            elif event.kind == "token":
                yield frame(OpenAIDelta(content=event.text))
            else:
                yield ServerSentEvent(data=error_payload(event.text, event.error_type))
                break
    yield ServerSentEvent(data="[DONE]")
