"""The slice of the OpenAI chat-completions wire format zhiku speaks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.common.schemas import ChatMessage, Citation, SourcePassage

MODEL_PREFIX = "zhiku:"


class OpenAIChatRequest(BaseModel):
    model: str = Field(..., min_length=1, description="'zhiku:<knowledge base>' or the bare name.")
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    top_k: int | None = Field(None, ge=1, le=50, description="zhiku extension: chunks retrieved.")

    @property
    def knowledge_base(self) -> str:
        return self.model.removeprefix(MODEL_PREFIX)


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "zhiku"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class OpenAIAssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class OpenAIChoice(BaseModel):
    index: int = 0
    message: OpenAIAssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class OpenAIUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class OpenAIChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[OpenAIChoice]
    usage: OpenAIUsage
    citations: list[Citation] = Field(default_factory=list, description="zhiku extension.")


class OpenAIDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class OpenAIChunkChoice(BaseModel):
    index: int = 0
    delta: OpenAIDelta
    finish_reason: Literal["stop", "length"] | None = None


class OpenAIChatChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[OpenAIChunkChoice]
    citations: list[Citation] | None = None
    zhiku_sources: list[SourcePassage] | None = Field(
        None,
        description="zhiku extension, on the first chunk only: the passages retrieved for the "
        "answer (empty when nothing relevant was found), sent before generation starts.",
    )
