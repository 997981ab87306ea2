"""The rerank stage: stored chunk texts, the offline rerankers and a missing cross-encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retriever import service
from retriever.rerank import (
    CrossEncoderReranker,
    E5Reranker,
    LexicalReranker,
    ScoreFusionReranker,
    create_reranker,
)
from retriever.store import IndexStore
from services.common.chunks import ChunkIn, ScoredChunk
from services.common.embedding import UseEmbedder
from services.common.errors import NotReadyError
from services.common.retriever_schemas import IndexAddRequest, RetrieverSearchRequest
from services.common.settings import RetrievalSettings

FILTER = "净水器的滤芯每三个月更换一次，更换前请关闭进水阀。"
TEA = "绿茶的冲泡水温以八十度左右为宜。"
BIKE = "The bicycle chain should be oiled every month."


def hit(chunk_id: int, dense: float | None = None, keyword: float | None = None) -> ScoredChunk:
    """A first-stage hit (its own document; the reranked scores are what matter)."""
    return ScoredChunk(
        chunk_id=chunk_id, document_id=chunk_id, score=0.0, dense_score=dense, keyword_score=keyword
    )


def test_chunk_texts_round_trip_and_replace(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)
    assert store.texts(7, [1]) == {}  # nothing written yet
    unit = np.array([1.0, 0.0], dtype=np.float32)
    store.upsert(
        7,
        "m",
        2,
        [
            ChunkIn(chunk_id=c, document_id=1, text=t, vector=unit)
            for c, t in ((1, "one"), (2, "two"))
        ],
    )
    store.upsert(7, "m", 2, [ChunkIn(chunk_id=2, document_id=1, text="deux", vector=unit)])
    assert store.texts(7, [1, 2, 3]) == {1: "one", 2: "deux"}


def test_lexical_scores_follow_coverage_of_the_query() -> None:
    scores = LexicalReranker().scores("滤芯多久更换一次", [TEA, FILTER, BIKE])
    assert scores[1] > scores[0] and scores[1] > scores[2]
    assert LexicalReranker().scores("滤芯", [""]) == [0.0]


def test_lexical_rerank_is_a_permutation_that_lifts_a_matching_candidate() -> None:
    texts = {10: TEA, 11: BIKE, 12: FILTER, 13: TEA}
    order = LexicalReranker().rerank("滤芯多久更换", [hit(c) for c in texts], texts)
    assert sorted(order) == [10, 11, 12, 13]
    assert order.index(12) < 2  # from third to one of the first two


def test_score_fusion_adds_scaled_bm25_and_cosine() -> None:
    reranker = ScoreFusionReranker(alpha=1.0)
    hits = [
        hit(1, dense=0.9, keyword=None),  # found by meaning only
        hit(2, dense=0.2, keyword=10.0),  # the best keyword match
        hit(3, dense=0.5, keyword=6.0),
    ]
    assert reranker.scores(hits) == pytest.approx([0.9, 1.2, 1.1])
    assert reranker.rerank("q", hits, {}) == [2, 3, 1]
    # No keyword match at all: the cosine alone decides.
    assert reranker.rerank("q", [hit(5, dense=0.1), hit(6, dense=0.3)], {}) == [6, 5]


def test_e5_scores_a_relevant_passage_highest() -> None:
    scores = E5Reranker().scores("滤芯多久更换一次？", [TEA, FILTER, BIKE])
    assert int(np.argmax(scores)) == 1


def test_cross_encoder_without_a_model_is_not_ready(tmp_path: Path) -> None:
    with pytest.raises(NotReadyError, match="RERANKER_PATH"):
        CrossEncoderReranker(None)
    with pytest.raises(NotReadyError, match="not there"):
        create_reranker(
            RetrievalSettings(reranker="cross-encoder", reranker_path=str(tmp_path / "none"))
        )


def test_search_with_rerank_reads_the_texts_written_at_indexing(tmp_path: Path) -> None:
    embedder = UseEmbedder()
    store = IndexStore(tmp_path)
    docs = [TEA, BIKE, FILTER] + [f"第{i}条无关的说明文字。" for i in range(30)]
    vectors = embedder.embed(docs)
    items = [
        ChunkIn.model_validate(
            ChunkIn(chunk_id=i, document_id=i, text=t, vector=vectors[i]).model_dump(mode="json")
        )
        for i, t in enumerate(docs)
    ]
    request = IndexAddRequest(embedding_model=embedder.name, dim=embedder.dim, items=items)
    service.add_chunks(store, embedder, 5, request)
    assert store.texts(5, [2]) == {2: FILTER}
    query = RetrieverSearchRequest(
        kb_id=5, query="滤芯多久更换一次", top_k=3, rerank=True, embedding_model=embedder.name
    )
    for reranker in ("lexical", "fusion"):
        settings = RetrievalSettings(reranker=reranker)
        hits = service.search(store, embedder, query, settings)
        assert len(hits) == 3 and hits[0].chunk_id == 2
