"""The slice of the OpenAI chat-completions wire format zhiku speaks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from services.common.schemas import Citation, SourcePassage

MODEL_PREFIX = "zhiku:"
# The knowledge-base search the gateway offers and runs itself (services/gateway/openai/tools.py).
SEARCH_TOOL = "search_knowledge_base"


class OpenAIFunctionCall(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)
    arguments: str = Field("{}", max_length=20000, description="A JSON object, as a string.")


class OpenAIToolCall(BaseModel):
    id: str = Field(..., min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: OpenAIFunctionCall


class OpenAIMessage(BaseModel):
    """A chat message; 'tool' messages answer an assistant's tool call by its id."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = Field(None, max_length=20000)
    tool_calls: list[OpenAIToolCall] | None = Field(None, max_length=32)
    tool_call_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _complete(self) -> OpenAIMessage:
        if self.role == "tool" and (not self.tool_call_id or self.content is None):
            raise ValueError("a tool message needs tool_call_id and content")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        if self.role in ("system", "user") and self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        return self


class OpenAIFunction(BaseModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="A JSON Schema object describing the arguments.",
    )

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError("parameters must be a JSON Schema of type 'object'")
        if not isinstance(value.get("properties", {}), dict):
            raise ValueError("parameters.properties must be an object")
        return value


class OpenAITool(BaseModel):
    type: Literal["function"]
    function: OpenAIFunction


class OpenAIToolName(BaseModel):
    name: str = Field(..., min_length=1, max_length=64)


class OpenAINamedToolChoice(BaseModel):
    type: Literal["function"]
    function: OpenAIToolName


ToolChoice = Literal["auto", "none", "required"] | OpenAINamedToolChoice


class OpenAIChatRequest(BaseModel):
    model: str = Field(..., min_length=1, description="'zhiku:<knowledge base>' or the bare name.")
    messages: list[OpenAIMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    top_k: int | None = Field(None, ge=1, le=50, description="zhiku extension: chunks retrieved.")
    tools: list[OpenAITool] | None = Field(None, max_length=64)
    tool_choice: ToolChoice | None = None

    @model_validator(mode="after")
    def _known_tools(self) -> OpenAIChatRequest:
        names = [t.function.name for t in self.tools or []]
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        if SEARCH_TOOL in names:
            raise ValueError(f"'{SEARCH_TOOL}' is zhiku's own tool; name yours otherwise")
        if isinstance(self.tool_choice, OpenAINamedToolChoice):
            wanted = self.tool_choice.function.name
            if wanted not in (*names, SEARCH_TOOL):
                raise ValueError(f"tool_choice names '{wanted}', which is not among the tools")
        return self

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


FinishReason = Literal["stop", "length", "tool_calls"]


class OpenAIAssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[OpenAIToolCall] | None = None


class OpenAIChoice(BaseModel):
    index: int = 0
    message: OpenAIAssistantMessage
    finish_reason: FinishReason = "stop"


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
    zhiku_tool: str | None = Field(
        None, description="zhiku extension: the built-in tool the gateway ran for this answer."
    )


class OpenAIFunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class OpenAIToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: OpenAIFunctionDelta


class OpenAIDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[OpenAIToolCallDelta] | None = None


class OpenAIChunkChoice(BaseModel):
    index: int = 0
    delta: OpenAIDelta
    finish_reason: FinishReason | None = None


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
