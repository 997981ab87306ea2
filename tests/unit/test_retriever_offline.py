"""retriever.offline: a saved index read in-process, fused and reranked as bench does it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retriever.kb_index import KbIndex
from retriever.offline import (
    FusedHit,
    SavedIndex,
    ann_config,
    fuse,
    offline_reranker,
    rerank_hits,
)
from services.common.chunks import ChunkIn
from services.common.settings import RetrievalSettings

TEXTS = {
    1: "长城是中国古代的军事防御工程",
    2: "熊猫生活在四川的竹林里",
    3: "The Eiffel Tower in Paris",
}


def vec(*values: float) -> NDArray[np.float32]:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_saved_index_is_searched_fused_and_reranked(tmp_path: Path) -> None:
    assert SavedIndex.load(tmp_path) is None
    index = KbIndex.create(tmp_path, "use", 4)
    vectors = {1: vec(1, 0, 0, 0), 2: vec(0, 1, 0, 0), 3: vec(0, 0, 1, 0)}
    index.upsert(
        [ChunkIn(chunk_id=c, document_id=10 * c, text=TEXTS[c], vector=vectors[c]) for c in TEXTS]
    )
    index.save()
    saved = SavedIndex.load(tmp_path)
    assert saved is not None
    query = vec(0.2, 1, 0, 0)
    dense = saved.dense(query, 3)
    assert [c for c, _ in dense] == [2, 1, 3]
    keyword = saved.keyword("熊猫 竹林", 3)
    assert keyword[0][0] == 2
    fused = fuse([[c for c, _ in dense], [c for c, _ in keyword]])
    assert fused[0][0] == 2
    assert saved.document_of(3) == 30 and saved.texts([1]) == {1: TEXTS[1]}
    cos = saved.similarity(query, [1, 2])
    assert cos[2] > cos[1] > 0
    hits = [FusedHit(c, saved.document_of(c), s, cos.get(c)) for c, s in fused if c in cos]
    assert rerank_hits(offline_reranker("fusion", alpha=1.0), "熊猫", hits, {})[0] == 2
    lexical = offline_reranker("lexical")
    assert lexical.needs_text
    assert rerank_hits(lexical, "熊猫", hits, saved.texts([h.chunk_id for h in hits]))[0] == 2


def test_ann_config_follows_the_retrieval_settings() -> None:
    ann = ann_config(RetrievalSettings(ann_min_vectors=1000, ann_nprobe=8, ann_lists_per_sqrt=1.0))
    assert (ann.min_vectors, ann.nprobe, ann.nlist(10_000)) == (1000, 8, 100)
