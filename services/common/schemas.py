"""Wire contracts shared by the gateway, the internal services, the CLI and the frontend."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Generic, Literal, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.common.chunks import ChunkLocation, ChunkRef, ChunkView, ScoredChunk


def _as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; zhiku writes them in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class ErrorPublic(BaseModel):
    error: str
    error_type: str


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(BaseModel, Generic[ItemT]):
    """A list answer: the items and how many there are."""

    data: list[ItemT]
    count: int


# --- knowledge bases -------------------------------------------------------------------------


class KnowledgeBaseCreate(BaseModel):
    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=r"^[\w\-\.\u4e00-\u9fff]+$",
        description="Unique name; letters, digits, CJK, '-', '_' and '.'.",
    )
    description: str = Field("", max_length=1000)


class KnowledgeBasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    embedding_model: str
    embedding_dim: int
    document_count: int = 0
    created_at: UtcDatetime


class KnowledgeBasesPublic(Page[KnowledgeBasePublic]):
    """The knowledge bases asked for."""


# --- documents and jobs ----------------------------------------------------------------------


class DocumentStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    knowledge_base: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: DocumentStatus
    chunk_count: int
    error: str | None = None
    created_at: UtcDatetime


class DocumentsPublic(Page[DocumentPublic]):
    """The documents asked for."""


class JobStage(StrEnum):
    QUEUED = "queued"
    PARSING = "parsing"
    CHUNKING = "chunking"
    EMBEDDING = "embedding"
    INDEXING = "indexing"
    DONE = "done"
    FAILED = "failed"


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    document_id: int | None
    knowledge_base: str
    filename: str
    stage: JobStage
    progress: float = Field(..., ge=0.0, le=1.0)
    error: str | None = None
    error_type: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class JobsPublic(Page[JobPublic]):
    """The ingestion jobs asked for."""


class UploadRejected(BaseModel):
    filename: str
    error: str
    error_type: str


class UploadAccepted(BaseModel):
    jobs: list[JobPublic]
    rejected: list[UploadRejected]
    duplicates: list[DocumentPublic] = Field(
        default_factory=list, description="Files whose content is already in the knowledge base."
    )


# --- search ----------------------------------------------------------------------------------


SearchMode = Literal["dense", "keyword", "hybrid"]


class SearchRequest(BaseModel):
    knowledge_base: str = Field(..., min_length=1)
    query: str = Field(..., min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=100)
    mode: SearchMode | None = Field(None, description="Unset: the configured default (hybrid).")
    rerank: bool | None = Field(None, description="Unset: the configured default.")


class ChunkHit(ScoredChunk, ChunkView):
    """A search hit: the stored chunk with the scores the retriever ranked it by."""


class SearchResponse(BaseModel):
    knowledge_base: str
    query: str
    hits: list[ChunkHit]


# --- chat ------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(..., max_length=20000)


AnswerMode = Literal["fast", "deep"]


class StepHit(BaseModel):
    chunk_id: int
    document_name: str
    score: float


class StepEvent(BaseModel):
    """One search of a deep chat, streamed as it is done: what was searched where, what came."""

    step: int = Field(..., ge=1, description="1 for the first search.")
    query: str
    knowledge_base: str
    hits: list[StepHit] = Field(default_factory=list, description="Best first, a few at most.")


class ChatRequest(BaseModel):
    knowledge_base: str = Field(..., min_length=1)
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    top_k: int | None = Field(None, ge=1, le=50)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=8192)
    mode: SearchMode | None = Field(None, description="Retrieval mode; unset: the default.")
    system_prompt: str | None = Field(
        None, max_length=4000, description="Replaces zhiku's grounding instructions when set."
    )
    conversation_id: int | None = Field(
        None,
        description="A saved conversation: its history is read from the database and both "
        "turns are appended to it; only the last message of `messages` is used.",
    )
    answer_mode: AnswerMode = Field(
        "fast",
        description="'fast': one search, then the answer. 'deep': the model may search again "
        "(reformulated, or in another knowledge base the caller sees) up to "
        "ZHIKU_CHAT__DEEP_MAX_STEPS searches, then answers from the passages of every step.",
    )


class Citation(ChunkRef):
    index: int = Field(..., description="The n of [n] in the answer.")
    document_name: str
    quote: str
    score: float
    location: ChunkLocation | None = Field(
        None, description="Page, sheet and rows, or slide of the cited chunk."
    )

    @classmethod
    def of(cls, index: int, hit: ChunkHit, quote: str) -> Self:
        """The citation [index] of an answer, backed by ``hit``."""
        return cls(
            index=index,
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            document_name=hit.document_name,
            quote=quote,
            score=hit.score,
            location=hit.location,
        )


class SourcePassage(Citation):
    """Passage [index] given to the model; its quote is the sentence nearest the question."""


class SourcesEvent(BaseModel):
    """A streamed chat's first event, before generation: the passages the answer is read from."""

    sources: list[SourcePassage] = Field(..., description="Empty when nothing relevant was found.")


class SentenceCheck(BaseModel):
    text: str
    citations: list[int] = Field(..., description="The [n] markers in this sentence.")
    support: float = Field(..., ge=0.0, le=1.0, description="Share of its words in the sources.")
    supported: bool


class AnswerCheck(BaseModel):
    """How well the answer is backed by the passages the model was given."""

    sentences: list[SentenceCheck] = Field(default_factory=list)
    unknown_markers: list[int] = Field(
        default_factory=list, description="[n] that name no passage given to the model."
    )
    unsupported: int = Field(0, description="Sentences whose words the sources do not carry.")
    remapped: dict[int, int] = Field(
        default_factory=dict,
        description="[n] whose passage did not carry the claim → the passage that does.",
    )


class ChatResponse(BaseModel):
    answer: str
    citations: list[Citation]
    grounded: bool = Field(..., description="False when the documents held nothing relevant.")
    usage: dict[str, int] = Field(default_factory=dict)
    query: str = Field("", description="What was searched: the question or its standalone rewrite.")
    check: AnswerCheck = Field(default_factory=AnswerCheck)
    conversation_id: int | None = Field(None, description="The conversation the turn went to.")
    message_id: int | None = Field(None, description="The stored answer, for feedback.")
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="Milliseconds per step: retrieval_ms, queue_ms, prompt_eval_ms, "
        "generation_ms, first_token_ms, checks_ms, total_ms.",
    )
    steps: list[StepEvent] = Field(
        default_factory=list, description="A deep chat's searches, in order; empty when fast."
    )


# --- health ----------------------------------------------------------------------------------


class HealthPublic(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


# --- knowledge base edits, chunks ------------------------------------------------------------


class KnowledgeBaseUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\w\-\.\u4e00-\u9fff]+$")
    description: str | None = Field(None, max_length=1000)


class ChunkPublic(ChunkView):
    chunk_count: int = Field(..., description="Chunks in the document.")
