"""Wire contracts of the internal retriever API (callers: the gateway and the ingestion worker)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.common.chunks import ChunkIn, ScoredChunk
from services.common.schemas import SearchMode

MAX_ITEMS_PER_REQUEST = 10_000


class EmbedderInfo(BaseModel):
    embedding_model: str
    dim: int


class IndexAddRequest(BaseModel):
    embedding_model: str = Field(..., min_length=1, max_length=200)
    dim: int = Field(..., ge=1, le=65_536)
    items: list[ChunkIn] = Field(..., max_length=MAX_ITEMS_PER_REQUEST)


class IndexAddResponse(BaseModel):
    added: int = Field(..., description="Items written (a chunk id given twice counts once).")
    total: int = Field(..., description="Chunks in the index afterwards.")


class IndexDeleteRequest(BaseModel):
    chunk_ids: list[int] = Field(..., max_length=1_000_000)


class IndexDeleteResponse(BaseModel):
    removed: int
    total: int


class IndexDropResponse(BaseModel):
    dropped: bool = Field(..., description="False when there was no index to drop.")


class IndexIds(BaseModel):
    ids: list[int] = Field(..., description="Every chunk id in the index, ascending.")
    count: int


class RetrieverReadiness(BaseModel):
    """/readyz: "degraded" (still 200) while an unreadable index waits for its rebuild."""

    status: Literal["ok", "degraded"]
    checks: dict[str, str] = Field(default_factory=dict)
    rebuild_needed: list[int] = Field(
        default_factory=list,
        description="Knowledge bases whose index was moved aside as unreadable; they answer "
        "empty until the ingestion worker has rebuilt them from the database.",
    )


class IndexStats(BaseModel):
    count: int
    embedding_model: str | None
    dim: int | None


class RetrieverSearchRequest(BaseModel):
    kb_id: int = Field(..., ge=0)
    query: str = Field(..., min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=1000)
    mode: SearchMode = "hybrid"
    rerank: bool = Field(False, description="Rescore the fused candidates before cutting to top_k.")
    embedding_model: str = Field(..., min_length=1, max_length=200)


class RetrieverSearchResponse(BaseModel):
    hits: list[ScoredChunk]
