"""The FAISS vector index: replace, remove, search and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from retriever.vector_index import FaissIndex

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
