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
from services.gateway.openai import tools
from services.gateway.openai.schemas import (
    MODEL_PREFIX,
    SEARCH_TOOL,
    FinishReason,
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
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    searched = False  # whether the model's turn chose the knowledge-base search
    if tools.uses_tools(body):
        turn = tools.tool_turn(state, body)
        if turn is not None:
            return _turn_reply(body, turn, completion_id, created)
        searched = body.tool_choice != "none"
    options = ChatOptions(
        top_k=body.top_k, temperature=body.temperature, max_tokens=body.max_tokens
    )
    messages = tools.grounded_messages(body.messages)
    pipeline = ChatPipeline(state, kb, messages, options).start(session)
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
        zhiku_tool=SEARCH_TOOL if searched else None,
    )


def _turn_reply(
    body: OpenAIChatRequest, turn: tools.ToolTurn, completion_id: str, created: int
) -> OpenAIChatResponse | AsyncIterator[str]:
    """The model's own turn: text, or calls of the client's tools for the client to run."""
    if body.stream:

        def frame(delta: OpenAIDelta, finish: FinishReason | None) -> OpenAIChatChunk:
            choice = OpenAIChunkChoice(delta=delta, finish_reason=finish)
            return OpenAIChatChunk(
                id=completion_id, created=created, model=body.model, choices=[choice]
            )

        return tools.sse_lines(tools.turn_chunks(turn, frame))
    # OpenAI sends null content beside calls that came without text.
    content = (turn.content or None) if turn.calls else turn.content
    message = OpenAIAssistantMessage(content=content, tool_calls=turn.calls or None)
    return OpenAIChatResponse(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[
            OpenAIChoice(message=message, finish_reason="tool_calls" if turn.calls else "stop")
        ],
        usage=_usage_of(turn.usage),
    )


def _usage(response: ChatResponse) -> OpenAIUsage:
    return _usage_of(response.usage)


def _usage_of(usage: dict[str, int]) -> OpenAIUsage:
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
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
