"""What the internal endpoints do: decode and check requests, then call the index store."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from retriever.backend import ChunkIndex
from retriever.keyword_index import term_counts
from retriever.rerank import get_reranker
from services.common.chunks import ScoredChunk
from services.common.embedding import Embedder, EmbeddingSpace, require_same_embedding
from services.common.errors import NotReadyError, ValidationFailedError
from services.common.retriever_schemas import IndexAddRequest, RetrieverSearchRequest
from services.common.settings import RetrievalSettings

logger = logging.getLogger(__name__)


def unit_vector(vector: NDArray[np.float32], dim: int, chunk_id: int) -> NDArray[np.float32]:
    """A chunk's vector checked to have ``dim`` finite floats, scaled to unit length."""
    if vector.ndim != 1 or vector.shape[0] != dim:
        raise ValidationFailedError(
            f"chunk {chunk_id}: vector has {vector.size} floats, expected dim {dim}"
        )
    if not np.all(np.isfinite(vector)):
        raise ValidationFailedError(f"chunk {chunk_id}: vector holds NaN or infinity")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValidationFailedError(f"chunk {chunk_id}: vector is all zeros")
    # Renormalise so that inner product stays a cosine even if a caller sent raw embeddings.
    return (vector / norm).astype(np.float32)


def add_chunks(
    store: ChunkIndex, embedder: Embedder, kb_id: int, req: IndexAddRequest
) -> tuple[int, int]:
    """Upsert the request's chunks into the index of ``kb_id``; answers (written, total)."""
    require_same_embedding(
        EmbeddingSpace("the request", req.embedding_model, req.dim),
        EmbeddingSpace.of(embedder, "the retriever"),
    )
    # A chunk id given twice in one batch is written once, with its last text and vector.
    unique = {item.chunk_id: item for item in req.items}
    chunks = [
        c.model_copy(update={"vector": unit_vector(c.vector, req.dim, c.chunk_id)})
        for c in unique.values()
    ]
    # Tokenised here, before the index lock, so searches are not held up by it.
    terms = [term_counts(c.text) for c in chunks]
    total = store.upsert(kb_id, req.embedding_model, req.dim, chunks, terms)
    return len(chunks), total


def search(
    store: ChunkIndex,
    embedder: Embedder | None,
    req: RetrieverSearchRequest,
    retrieval: RetrievalSettings | None = None,
) -> list[ScoredChunk]:
    """Rank the chunks of ``req.kb_id`` for ``req.query``, reranked when asked, best first."""
    if not req.rerank:
        return _search(store, embedder, req)
    # Rescore a deeper candidate list than asked for, then cut to top_k.
    depth = max(req.top_k * 4, 20)
    candidates = _search(store, embedder, req.model_copy(update={"top_k": depth}))
    if len(candidates) < 2:
        return candidates[: req.top_k]
    reranker = get_reranker(retrieval or RetrievalSettings())
    ids = [hit.chunk_id for hit in candidates]
    texts = store.texts(req.kb_id, ids) if reranker.needs_text else {}
    order = reranker.rerank(req.query, candidates, texts)
    by_id = {hit.chunk_id: hit for hit in candidates}
    return [by_id[cid] for cid in order[: req.top_k]]


def _search(
    store: ChunkIndex, embedder: Embedder | None, req: RetrieverSearchRequest
) -> list[ScoredChunk]:
    model = store.searched_model(req.kb_id)
    if model is None:
        return []
    require_same_embedding(
        EmbeddingSpace(f"knowledge base {req.kb_id}", model),
        EmbeddingSpace("the search", req.embedding_model),
    )
    if req.mode == "keyword":
        return store.search(req, None)
    if embedder is None:
        raise NotReadyError("the embedding model is still loading")
    require_same_embedding(
        EmbeddingSpace("the search", req.embedding_model),
        EmbeddingSpace.of(embedder, "the retriever"),
    )
    # Embedding is the slow part; the index is not held meanwhile, so writers are not held up.
    return store.search(req, embedder.embed([req.query])[0])
