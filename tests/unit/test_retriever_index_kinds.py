"""The dense index kind follows the size (flat, IVF-flat, 8-bit IVF); mapped on restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retriever.store import IndexStore
from retriever.vector_index import AnnConfig, FaissIndex
from services.common.chunks import ChunkIn
from services.common.retriever_schemas import RetrieverSearchRequest
from services.common.settings import RetrievalSettings

DIM = 32
MODEL = "test-model"
KINDS = AnnConfig(min_vectors=1000, sq8_min_vectors=2000, nprobe=32)


def clustered(n: int, seed: int = 0) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM))
    points = centres[rng.integers(0, 40, n)] + 0.4 * rng.standard_normal((n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def span(start: int, stop: int) -> NDArray[np.int64]:
    return np.arange(start, stop, dtype=np.int64)


def test_the_kind_switches_at_each_threshold_and_back_under_half() -> None:
    vectors = clustered(2500)
    idx = FaissIndex.create(DIM)
    idx.upsert(span(0, 999), vectors[:999])
    assert idx.tune(KINDS) is False and idx.kind == "flat"
    idx.upsert(span(999, 1000), vectors[999:1000])
    assert idx.tune(KINDS) is True and idx.kind == "ivf-flat"
    idx.upsert(span(1000, 1999), vectors[1000:1999])
    assert idx.tune(KINDS) is False and idx.kind == "ivf-flat"
    idx.upsert(span(1999, 2500), vectors[1999:])
    assert idx.tune(KINDS) is True and idx.kind == "ivf-sq8" and idx.trained_for == 2500
    # Under the 8-bit threshold but above half of it: stays, so a base near it does not flip.
    idx.remove(span(0, 1000))
    assert idx.tune(KINDS) is False and idx.kind == "ivf-sq8"
    idx.remove(span(1000, 1600))
    assert idx.tune(KINDS) is True and idx.kind == "ivf-flat" and idx.count == 900
    idx.remove(span(1600, 2100))
    assert idx.tune(KINDS) is True and idx.kind == "flat" and idx.trained_for is None
    assert idx.ids() == set(range(2100, 2500))
    # Vectors that went through 8-bit codes and back still find themselves.
    assert idx.search(vectors[2300], k=1)[0][0] == 2300


def test_eight_bit_ivf_finds_the_exact_neighbours() -> None:
    vectors = clustered(4000, seed=1)
    exact, approx = FaissIndex.create(DIM), FaissIndex.create(DIM)
    exact.upsert(span(0, 4000), vectors)
    approx.upsert(span(0, 4000), vectors)
    assert approx.tune(KINDS) and approx.kind == "ivf-sq8"
    queries = clustered(100, seed=2)
    found = [
        len({c for c, _ in exact.search(q, 10)} & {c for c, _ in approx.search(q, 10)})
        for q in queries
    ]
    assert sum(found) / (10 * len(queries)) >= 0.95


def test_deletes_and_replacements_work_after_the_switch() -> None:
    vectors = clustered(2200, seed=3)
    idx = FaissIndex.create(DIM)
    idx.upsert(span(0, 2200), vectors)
    assert idx.tune(KINDS) and idx.kind == "ivf-sq8"
    assert idx.remove(span(10, 20)) == 10 and idx.count == 2190
    assert all(c not in range(10, 20) for c, _ in idx.search(vectors[15], k=20))
    idx.upsert(span(5, 6), vectors[100:101])  # replaced: one entry, the new vector
    assert idx.count == 2190 and idx.search(vectors[100], k=2)[0][0] in (5, 100)
    assert idx.similarity(vectors[100], [5])[5] > 0.99


def chunks(rows: range, vectors: NDArray[np.float32]) -> list[ChunkIn]:
    return [
        ChunkIn(chunk_id=i, document_id=i // 10, text=f"段落 {i}", vector=vectors[i]) for i in rows
    ]


def test_a_restart_maps_the_saved_kind_and_changes_it_after(tmp_path: Path) -> None:
    settings = RetrievalSettings(ann_min_vectors=1000, ann_sq8_min_vectors=2000, ann_nprobe=32)
    vectors = clustered(2600, seed=4)
    store = IndexStore(tmp_path, settings)
    store.upsert(7, MODEL, DIM, chunks(range(0, 1200), vectors))
    store.upsert(7, MODEL, DIM, chunks(range(1200, 2400), vectors))  # snapshot as ivf-sq8
    restarted = IndexStore(tmp_path, settings)
    with restarted.read(7) as kb:  # nothing journaled since the snapshot: mapped as saved
        assert kb is not None and kb.vectors.kind == "ivf-sq8" and kb.vectors.mapped
        assert kb.count == 2400
    # Changes to the mapped index (copied into memory first), then restarts replay them.
    assert restarted.remove(7, [100, 101]) == (2, 2398)
    with IndexStore(tmp_path, settings).read(7) as kb:
        assert kb is not None and kb.vectors.kind == "ivf-sq8" and kb.count == 2398
        assert not kb.vectors.mapped  # the journal's removal was applied to a copy
    assert restarted.upsert(7, MODEL, DIM, chunks(range(2400, 2600), vectors)) == 2598
    again = IndexStore(tmp_path, settings)
    request = RetrieverSearchRequest(
        kb_id=7, query="q", top_k=3, mode="dense", rerank=False, embedding_model=MODEL
    )
    hits = again.search(request, vectors[2500])
    assert hits[0].chunk_id == 2500
    assert {h.chunk_id for h in again.search(request, vectors[100])}.isdisjoint({100, 101})
    with again.read(7) as kb:
        assert kb is not None and kb.vectors.kind == "ivf-sq8" and kb.count == 2598
