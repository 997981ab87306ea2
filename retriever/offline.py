"""The retriever's engines in this process, for offline evaluation: the one module bench imports.

bench.rerank_options ranks questions on a saved index without a server, and
bench.retrieval_scale times the bare engines beside the served ones. Both go through these
names only, so the retriever's own modules can change behind them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retriever.fusion import reciprocal_rank_fusion
from retriever.kb_index import KbIndex
from retriever.keyword_index import KeywordIndex, term_counts
from retriever.rerank import Reranker, ScoreFusionReranker, create_reranker
from retriever.vector_index import AnnConfig
from services.common.chunks import ScoredChunk
from services.common.settings import RetrievalSettings

__all__ = [
    "AnnConfig",
    "FusedHit",
    "KeywordIndex",
    "Ranking",
    "Reranker",
    "SavedIndex",
    "ann_config",
    "fuse",
    "offline_reranker",
    "rerank_hits",
    "term_counts",
]

Ranking = list[tuple[int, float]]  # (chunk id, score), best first


@dataclass(frozen=True)
class FusedHit:
    """A fused candidate: its chunk and document, and each first-stage score (None: missed)."""

    chunk_id: int
    document_id: int
    score: float
    dense_score: float | None = None
    keyword_score: float | None = None


def fuse(rankings: Sequence[Sequence[int]]) -> Ranking:
    """Reciprocal rank fusion of chunk-id rankings, as hybrid search fuses dense and keyword."""
    return reciprocal_rank_fusion([list(ranking) for ranking in rankings])


def offline_reranker(name: str, alpha: float | None = None) -> Reranker:
    """A reranker by kind: ``fusion`` (``alpha`` None: the served one's), ``lexical``, ``e5``."""
    if name == "fusion" and alpha is not None:
        return ScoreFusionReranker(alpha)
    return create_reranker(RetrievalSettings.model_validate({"reranker": name}))


def rerank_hits(
    reranker: Reranker, query: str, hits: Sequence[FusedHit], texts: Mapping[int, str]
) -> list[int]:
    """The hits' chunk ids in the reranker's order (``texts`` is read only if it needs text)."""
    scored = [
        ScoredChunk(
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            score=hit.score,
            dense_score=hit.dense_score,
            keyword_score=hit.keyword_score,
        )
        for hit in hits
    ]
    return reranker.rerank(query, scored, texts)


def ann_config(retrieval: RetrievalSettings) -> AnnConfig:
    """The approximate-search parameters the retriever derives from these settings."""
    return AnnConfig.from_settings(retrieval)


class SavedIndex:
    """One knowledge base's index as the retriever saved it, read in this process."""

    def __init__(self, index: KbIndex) -> None:
        self._index = index

    @classmethod
    def load(cls, directory: Path) -> SavedIndex | None:
        """The index saved in ``directory`` (journal replayed); None when none was saved."""
        index = KbIndex.load(directory)
        return None if index is None else cls(index)

    def dense(self, vector: NDArray[np.float32], k: int) -> Ranking:
        """The ``k`` chunks nearest to ``vector`` by cosine."""
        return self._index.vectors.search(vector, k)

    def keyword(self, query: str, k: int) -> Ranking:
        """The ``k`` best chunks for ``query`` by BM25."""
        return self._index.keywords.search(query, k)

    def similarity(self, vector: NDArray[np.float32], chunk_ids: list[int]) -> dict[int, float]:
        """Cosine of ``vector`` with each of the given chunks."""
        return self._index.vectors.similarity(vector, chunk_ids)

    def document_of(self, chunk_id: int) -> int:
        """The document a chunk belongs to."""
        return self._index.documents[chunk_id]

    def texts(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The stored texts of the given chunks."""
        return self._index.keywords.texts(chunk_ids)
