"""The OpenAI chat-completions format over the chat pipeline; each knowledge base is a model."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

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


@dataclass
class Begun:
    """A completion under way: the model's own tool turn, ready; or the grounded pipeline."""

    turn: OpenAIChatResponse | AsyncIterator[str] | None = None
    pipeline: ChatPipeline | None = None
    searched: bool = False  # whether the model's turn chose the knowledge-base search


def start(
    state: GatewayState, session: Session, body: OpenAIChatRequest, principal: Principal
) -> Begun:
    """The tool turn, or the pipeline run up to its search (bad requests fail before a reply)."""
    kb = get_kb(session, body.knowledge_base, principal)
    searched = False
    if tools.uses_tools(body):
        turn = tools.tool_turn(state, body)
        if turn is not None:
            completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
            return Begun(turn=_turn_reply(body, turn, completion_id, created))
        searched = body.tool_choice != "none"
    options = ChatOptions(
        top_k=body.top_k, temperature=body.temperature, max_tokens=body.max_tokens
    )
    messages = tools.grounded_messages(body.messages)
    pipeline = ChatPipeline(state, kb, messages, options).start(session)
    return Begun(pipeline=pipeline, searched=searched)


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
    body: OpenAIChatRequest,
    pipeline: ChatPipeline,
    disconnected: Callable[[], Awaitable[bool]],
    searched: bool = False,
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
