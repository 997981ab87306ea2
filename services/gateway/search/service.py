"""Search: the retriever ranks chunk ids, the database supplies their text and documents."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.common.chunks import ChunkLocation, ScoredChunk
from services.common.jobs import DocumentStatus
from services.common.models import Chunk, Document, KnowledgeBase, chunks_with_names
from services.common.schemas import ChunkHit, SearchMode, SearchRequest, SearchResponse
from services.gateway.auth import Principal
from services.gateway.knowledge_bases.service import get_kb
from services.gateway.state import GatewayState


def _resolve(session: Session, kb: KnowledgeBase, hits: list[ScoredChunk]) -> list[ChunkHit]:
    """Hits in the retriever's order; chunks deleted meanwhile are dropped, not invented.

    Only chunks of ``kb``'s own ready documents count: a vector left behind under an id that
    now names another knowledge base's chunk must never bring that chunk's text here.
    """
    if not hits:
        return []
    rows = session.execute(
        chunks_with_names().where(
            Chunk.id.in_([h.chunk_id for h in hits]),
            Document.knowledge_base_id == kb.id,
            Document.status == DocumentStatus.READY,
        )
    ).all()
    by_id = {row.id: row for row in rows}
    resolved = []
    for hit in hits:
        row = by_id.get(hit.chunk_id)
        if row is None:
            continue
        resolved.append(
            ChunkHit(
                chunk_id=row.id,
                document_id=row.document_id,
                document_name=row.filename,
                position=row.position,
                location=ChunkLocation.of(row.location),
                text=row.text,
                score=hit.score,
                dense_score=hit.dense_score,
                keyword_score=hit.keyword_score,
            )
        )
    return resolved


def search_chunks(
    state: GatewayState,
    session: Session,
    kb: KnowledgeBase,
    query: str,
    top_k: int,
    mode: SearchMode | None = None,
    rerank: bool | None = None,
) -> list[ChunkHit]:
    """Ranked chunks; mode and rerank default to the retrieval settings."""
    defaults = state.settings.retrieval
    hits = state.retriever.search(
        kb.id,
        query,
        top_k,
        kb.embedding_model,
        mode or defaults.mode,
        defaults.rerank if rerank is None else rerank,
    )
    return _resolve(session, kb, hits)


def search(
    state: GatewayState, session: Session, body: SearchRequest, principal: Principal
) -> SearchResponse:
    """A search request against a knowledge base the caller sees."""
    kb = get_kb(session, body.knowledge_base, principal)
    hits = search_chunks(state, session, kb, body.query, body.top_k, body.mode, body.rerank)
    return SearchResponse(knowledge_base=kb.name, query=body.query, hits=hits)
