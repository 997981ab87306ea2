"""The FAISS vector index: replace, remove, search and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from retriever.vector_index import AnnConfig, FaissIndex

DIM = 8


def unit(*hot: int) -> NDArray[np.float32]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[list(hot)] = 1.0
    return vector / np.linalg.norm(vector)


def ids(*values: int) -> NDArray[np.int64]:
    return np.array(values, dtype=np.int64)


@pytest.fixture
def index() -> FaissIndex:
    idx = FaissIndex.create(DIM)
    idx.upsert(ids(101, 102, 2**40), np.vstack([unit(0), unit(1), unit(2)]))
    return idx


def test_search_returns_ids_and_cosines_best_first(index: FaissIndex) -> None:
    hits = index.search(unit(1, 2), k=5)
    assert [chunk_id for chunk_id, _ in hits][:2] in ([102, 2**40], [2**40, 102])
    assert hits[0][1] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert hits[-1][0] == 101
    assert hits[-1][1] == pytest.approx(0.0, abs=1e-6)
    assert len(hits) == 3  # k above the count answers what exists, no -1 padding


def test_upsert_replaces_an_existing_id(index: FaissIndex) -> None:
    index.upsert(ids(101), unit(3).reshape(1, -1))
    assert index.count == 3
    [(best_id, best_score)] = index.search(unit(3), k=1)
    assert best_id == 101
    assert best_score == pytest.approx(1.0)
    assert index.search(unit(0), k=1)[0][1] == pytest.approx(0.0, abs=1e-6)


def test_upsert_refuses_duplicate_ids_and_wrong_shapes(index: FaissIndex) -> None:
    with pytest.raises(ValueError, match="unique"):
        index.upsert(ids(5, 5), np.vstack([unit(0), unit(1)]))
    with pytest.raises(ValueError, match="dim 8"):
        index.upsert(ids(5), np.zeros((1, DIM + 1), dtype=np.float32))


def test_remove_answers_how_many_were_present(index: FaissIndex) -> None:
    assert index.remove(ids(102, 999)) == 1
    assert index.ids() == {101, 2**40}
    assert 102 not in dict(index.search(unit(1), k=5))
    assert index.remove(ids()) == 0


def test_similarity_of_named_ids_skips_missing_ones(index: FaissIndex) -> None:
    sims = index.similarity(unit(0), [101, 102, 555])
    assert sims == {101: pytest.approx(1.0), 102: pytest.approx(0.0, abs=1e-6)}


def test_save_and_load_round_trip(index: FaissIndex, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    index.save(path)
    loaded = FaissIndex.load(path)
    assert (loaded.dim, loaded.ids()) == (DIM, {101, 102, 2**40})
    [(best_id, best_score)] = loaded.search(unit(2), k=1)
    assert best_id == 2**40
    assert best_score == pytest.approx(1.0)
    loaded.remove(ids(2**40))
    assert loaded.ids() == {101, 102}
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"]


def test_empty_index_searches_to_nothing() -> None:
    assert FaissIndex.create(DIM).search(unit(0), k=3) == []
    with pytest.raises(ValueError, match="positive"):
        FaissIndex.create(0)


def clustered(n: int, dim: int = 16, seed: int = 0) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    points = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


ANN = AnnConfig(min_vectors=1000, nprobe=8)


def test_a_large_index_turns_approximate_and_keeps_every_operation(tmp_path: Path) -> None:
    vectors = clustered(1500)
    chunk_ids = np.arange(1500, dtype=np.int64) * 3
    idx = FaissIndex.create(16)
    idx.upsert(chunk_ids[:900], vectors[:900])
    assert idx.tune(ANN) is False and not idx.approximate
    idx.upsert(chunk_ids[900:], vectors[900:])
    assert idx.tune(ANN) is True and idx.approximate
    assert (idx.trained_for, idx.count) == (1500, 1500)
    assert idx.ids() == set(chunk_ids.tolist())
    assert idx.search(vectors[7], k=1)[0][0] == 21
    assert idx.similarity(vectors[7], [21, 4]) == {21: pytest.approx(1.0)}
    idx.upsert(ids(21), vectors[8:9])  # replace: still one entry for id 21
    assert idx.count == 1500
    assert idx.similarity(vectors[8], [21])[21] == pytest.approx(1.0)
    assert idx.remove(ids(21, 24, 2)) == 2
    path = tmp_path / "vectors.faiss"
    idx.save(path)
    loaded = FaissIndex.load(path, trained_for=1500)
    assert loaded.approximate and loaded.ids() == idx.ids()
    assert loaded.tune(ANN) is False


def test_approximate_search_finds_nearly_all_exact_neighbours() -> None:
    vectors = clustered(3000, seed=1)
    chunk_ids = np.arange(3000, dtype=np.int64)
    exact, approx = FaissIndex.create(16), FaissIndex.create(16)
    exact.upsert(chunk_ids, vectors)
    approx.upsert(chunk_ids, vectors)
    approx.tune(AnnConfig(min_vectors=1000, nprobe=16))
    queries = clustered(50, seed=2)
    found = [
        len({c for c, _ in exact.search(q, 10)} & {c for c, _ in approx.search(q, 10)})
        for q in queries
    ]
    assert sum(found) / (10 * len(queries)) >= 0.9


def test_the_ivf_is_retrained_when_doubled_and_exact_again_when_small() -> None:
    vectors = clustered(2400)
    idx = FaissIndex.create(16)
    idx.upsert(np.arange(1000, dtype=np.int64), vectors[:1000])
    assert idx.tune(ANN) and idx.trained_for == 1000
    idx.upsert(np.arange(1000, 1900, dtype=np.int64), vectors[1000:1900])
    assert idx.tune(ANN) is False
    idx.upsert(np.arange(1900, 2400, dtype=np.int64), vectors[1900:])
    assert idx.tune(ANN) and idx.trained_for == 2400
    idx.remove(np.arange(0, 2000, dtype=np.int64))
    assert idx.tune(ANN) and not idx.approximate and idx.trained_for is None
    assert idx.ids() == set(range(2000, 2400))
    assert idx.search(vectors[2100], k=1)[0][0] == 2100
