"""The generation task on the wire: what the gateway asks of an llm worker, what streams back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from services.common.chunks import ChunkView
from services.common.schemas import ChatMessage


class ContextPassage(BaseModel):
    index: int
    document_name: str
    text: str

    @classmethod
    def of(cls, index: int, chunk: ChunkView) -> ContextPassage:
        """Passage [index] given to the model: a chunk's text under its document's name."""
        return cls(index=index, document_name=chunk.document_name, text=chunk.text)


class GenerationRequest(BaseModel):
    stream_id: str
    purpose: Literal["answer", "rewrite", "plan", "tools"] = Field(
        "answer",
        description="'rewrite': turn a follow-up into a standalone search query. 'plan': a deep "
        "chat's next step; the question is then the planner's turn (services.common.planning). "
        "'tools': continue ``chat`` with the model's own template, offering ``tools``.",
    )
    question: str
    history: list[ChatMessage] = Field(default_factory=list)
    passages: list[ContextPassage] = Field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    system_prompt: str | None = None
    chat: list[dict[str, Any]] = Field(
        default_factory=list, description="'tools': the OpenAI-format messages, as sent."
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="'tools': OpenAI-format function tools."
    )
    tool_choice: str | dict[str, Any] = Field(
        "auto", description="'tools': 'auto', 'required' or {'type': 'function', ...}."
    )


class StreamEvent(BaseModel):
    """One event of a generation stream: a token, the end (with usage), or an error."""

    kind: Literal["token", "end", "error"]
    text: str = ""
    usage: dict[str, int] = Field(default_factory=dict)
    timings: dict[str, float] = Field(
        default_factory=dict, description="On the end event: the worker's prompt and generation ms."
    )
    error_type: str | None = None
    id: str = Field(
        "", exclude=True, description="Its place in the stream, set when read; resume after it."
    )
