"""Dense, keyword and hybrid (RRF) ranking over one knowledge base's FAISS and Tantivy indexes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from retriever.fusion import reciprocal_rank_fusion
from retriever.kb_index import KbIndex
from services.common.chunks import ScoredChunk
from services.common.retriever_schemas import RetrieverSearchRequest


def rank(
    kb: KbIndex, req: RetrieverSearchRequest, query_vector: NDArray[np.float32] | None
) -> list[ScoredChunk]:
    """The ``req.top_k`` best chunks of ``kb`` in ``req.mode`` (a vector unless keyword-only)."""
    if req.mode == "keyword":
        hits = kb.keywords.search(req.query, req.top_k)
        return [_hit(kb, cid, s, None, s) for cid, s in hits]
    if query_vector is None:
        raise ValueError(f"a {req.mode} search needs the query's vector")
    if req.mode == "dense":
        hits = kb.vectors.search(query_vector, req.top_k)
        return [_hit(kb, cid, s, s, None) for cid, s in hits]
    return _rank_hybrid(kb, req, query_vector)


def _rank_hybrid(
    kb: KbIndex, req: RetrieverSearchRequest, query_vector: NDArray[np.float32]
) -> list[ScoredChunk]:
    depth = max(req.top_k * 4, 20)
    dense_scores = dict(kb.vectors.search(query_vector, depth))
    keyword_scores = dict(kb.keywords.search(req.query, depth))
    fused = reciprocal_rank_fusion([list(dense_scores), list(keyword_scores)])[: req.top_k]
    # Chunks found only by keywords still get their cosine, so callers can apply one threshold.
    missing = [cid for cid, _ in fused if cid not in dense_scores]
    dense_scores.update(kb.vectors.similarity(query_vector, missing))
    return [
        _hit(kb, cid, score, dense_scores.get(cid), keyword_scores.get(cid)) for cid, score in fused
    ]


def _hit(
    kb: KbIndex, chunk_id: int, score: float, dense: float | None, keyword: float | None
) -> ScoredChunk:
    return ScoredChunk(
        chunk_id=chunk_id,
        document_id=kb.documents[chunk_id],
        score=score,
        dense_score=dense,
        keyword_score=keyword,
    )
