"""Tool calling on /v1/chat/completions: the model's turn with the client's tools and zhiku's own.

The model reads the conversation in its own chat template with the tools offered, and answers
with text or ``<tool_call>`` blocks. Calls of the client's tools go back to the client (OpenAI's
``tool_calls``); a call of ``search_knowledge_base`` is zhiku's: the gateway answers it itself
with the grounded, cited answer of the chat pipeline, as if no tools had been offered.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import UpstreamError
from services.common.generation_schemas import GenerationRequest
from services.common.schemas import ChatMessage
from services.common.tool_calls import ParsedToolCall, parse_tool_calls
from services.gateway.chat.pipeline import stream_error
from services.gateway.chat.worker_watch import hold_generation_slot, watched_generation
from services.gateway.openai.schemas import (
    SEARCH_TOOL,
    FinishReason,
    OpenAIChatChunk,
    OpenAIChatRequest,
    OpenAIDelta,
    OpenAIFunctionCall,
    OpenAIFunctionDelta,
    OpenAIMessage,
    OpenAINamedToolChoice,
    OpenAIToolCall,
    OpenAIToolCallDelta,
)
from services.gateway.state import GatewayState

# Arguments are streamed in pieces of this many characters, as servers stream them token-wise.
ARGUMENT_PIECE = 64


@dataclass(frozen=True)
class ToolTurn:
    """The model's reply when it did not ask for the knowledge base: text or client calls."""

    content: str
    calls: list[OpenAIToolCall] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)


def search_tool(knowledge_base: str) -> dict[str, Any]:
    """zhiku's built-in tool: search the request's knowledge base, answered by the gateway."""
    return {
        "type": "function",
        "function": {
            "name": SEARCH_TOOL,
            "description": (
                f"Search the knowledge base '{knowledge_base}' (the user's own documents) and "
                "answer from them with citations. Use it for any question about facts that "
                "could be in those documents; not for greetings, arithmetic or small talk."
            ),
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What to look up."}},
                "required": ["query"],
            },
        },
    }


def uses_tools(body: OpenAIChatRequest) -> bool:
    """Whether the request takes part in tool calling (tools offered or a tool loop going on)."""
    return body.tools is not None or any(m.role == "tool" or m.tool_calls for m in body.messages)


def grounded_messages(messages: list[OpenAIMessage]) -> list[ChatMessage]:
    """The user and assistant text turns up to the last user message, for the chat pipeline."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return [
        ChatMessage(role=m.role, content=m.content)
        for m in messages[: last_user + 1]
        if m.role in ("system", "user", "assistant") and m.content
    ]


def tool_turn(state: GatewayState, body: OpenAIChatRequest) -> ToolTurn | None:
    """The model's turn with the tools; None when the chat pipeline should answer instead.

    That is when the model (or the client's tool_choice) picks the knowledge-base search, and
    when tool_choice is 'none' for a new user question (the plain grounded answer).
    """
    choice = body.tool_choice or "auto"
    if isinstance(choice, OpenAINamedToolChoice) and choice.function.name == SEARCH_TOOL:
        return None
    if choice == "none" and body.messages[-1].role == "user":
        return None
    offered = [search_tool(body.knowledge_base)] if choice != "none" else []
    if offered:
        offered += [t.model_dump(exclude_none=True) for t in body.tools or []]
    forced = choice == "required" or isinstance(choice, OpenAINamedToolChoice)
    text, usage = _generate(state, body, offered, choice)
    parsed = parse_tool_calls(text) if offered else (text, [])
    if parsed is None:
        if forced:
            raise UpstreamError("the model did not write a well-formed tool call")
        return ToolTurn(text.strip(), usage=usage)
    content, calls = parsed
    names = {t["function"]["name"] for t in offered}
    known = [c for c in calls if c.name in names]
    client_calls = [c for c in known if c.name != SEARCH_TOOL]
    if not client_calls and len(known) < len(calls) and forced:
        raise UpstreamError("the model called a tool that was not offered")
    if not client_calls and known:
        return None  # the knowledge-base search alone: zhiku answers it
    if not client_calls:
        return ToolTurn(content or text.strip(), usage=usage)
    return ToolTurn(content, [_call(c) for c in client_calls], usage)


def _call(parsed: ParsedToolCall) -> OpenAIToolCall:
    function = OpenAIFunctionCall(name=parsed.name, arguments=parsed.arguments)
    return OpenAIToolCall(id=f"call_{uuid.uuid4().hex[:24]}", function=function)


def _generate(
    state: GatewayState,
    body: OpenAIChatRequest,
    tools: list[dict[str, Any]],
    choice: str | OpenAINamedToolChoice,
) -> tuple[str, dict[str, int]]:
    """The model's whole reply as text (``<tool_call>`` blocks included), and its usage."""
    question = next((m.content or "" for m in reversed(body.messages) if m.role == "user"), "")
    request = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        purpose="tools",
        question=question,
        chat=[m.model_dump(exclude_none=True) for m in body.messages],
        tools=tools,
        tool_choice=choice.model_dump() if isinstance(choice, OpenAINamedToolChoice) else choice,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    pieces: list[str] = []
    usage: dict[str, int] = {}
    with hold_generation_slot(state) or nullcontext():
        for event in watched_generation(state, request):
            if event.kind == "token":
                pieces.append(event.text)
            elif event.kind == "end":
                usage = event.usage
            else:
                raise stream_error(event)
    return "".join(pieces), usage


Frame = Callable[[OpenAIDelta, FinishReason | None], OpenAIChatChunk]


def turn_chunks(turn: ToolTurn, frame: Frame) -> Iterator[OpenAIChatChunk]:
    """The turn as chunks: role, content, each call (id and name, then argument pieces), finish.

    ``frame(delta, finish_reason)`` makes one chunk of this completion.
    """
    yield frame(OpenAIDelta(role="assistant", content=turn.content or ""), None)
    for index, call in enumerate(turn.calls):
        head = OpenAIFunctionDelta(name=call.function.name, arguments="")
        first = OpenAIToolCallDelta(index=index, id=call.id, type="function", function=head)
        yield frame(OpenAIDelta(tool_calls=[first]), None)
        args = call.function.arguments
        for start in range(0, len(args), ARGUMENT_PIECE):
            piece = OpenAIFunctionDelta(arguments=args[start : start + ARGUMENT_PIECE])
            more = OpenAIToolCallDelta(index=index, function=piece)
            yield frame(OpenAIDelta(tool_calls=[more]), None)
    yield frame(OpenAIDelta(), "tool_calls" if turn.calls else "stop")


async def sse_lines(chunks: Iterator[OpenAIChatChunk]) -> AsyncIterator[str]:
    """Server-Sent Event lines of ready chunks, then [DONE]."""
    for chunk in chunks:
        yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
    yield "data: [DONE]\n\n"
