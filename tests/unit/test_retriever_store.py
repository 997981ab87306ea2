"""Per-knowledge-base indexes on disk: persistence, idempotent upserts, mismatches, recovery."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import ValidationError

from retriever.kb_index import META_FILE, VECTORS_FILE, KbIndex
from retriever.keyword_index import term_counts
from retriever.persist import read_json
from retriever.service import search, unit_vector
from retriever.store import IndexStore
from services.common.chunks import ChunkIn, parse_vector
from services.common.errors import EmbeddingMismatchError, ValidationFailedError
from services.common.retriever_schemas import RetrieverSearchRequest
from services.common.settings import RetrievalSettings

DIM = 4
MODEL = "test-model"


def vec(*values: float) -> NDArray[np.float32]:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def chunk(chunk_id: int, document_id: int, text: str, vector: NDArray[np.float32]) -> ChunkIn:
    return ChunkIn(chunk_id=chunk_id, document_id=document_id, text=text, vector=vector)


RECORDS = [
    chunk(1, 10, "长城是中国古代的军事防御工程", vec(1, 0, 0, 0)),
    chunk(2, 10, "熊猫生活在四川的竹林里", vec(0, 1, 0, 0)),
    chunk(3, 20, "The Eiffel Tower stands in Paris", vec(0, 0, 1, 0)),
]


@pytest.fixture
def store(tmp_path: Path) -> IndexStore:
    s = IndexStore(tmp_path)
    s.upsert(7, MODEL, DIM, RECORDS)
    return s


def keyword_request(query: str, model: str = MODEL, kb: int = 7) -> RetrieverSearchRequest:
    return RetrieverSearchRequest(
        kb_id=kb, query=query, top_k=5, mode="keyword", embedding_model=model
    )


def test_upsert_persists_so_a_new_store_sees_the_chunks(store: IndexStore, tmp_path: Path) -> None:
    reopened = IndexStore(tmp_path)
    stats = reopened.stats(7)
    assert (stats.count, stats.embedding_model, stats.dim) == (3, MODEL, DIM)
    with reopened.read(7) as kb:
        assert kb is not None
        assert kb.documents == {1: 10, 2: 10, 3: 20}
        assert kb.vectors.search(vec(0, 1, 0, 0), k=1)[0][0] == 2
    hits = search(reopened, None, keyword_request("熊猫"))
    assert [(h.chunk_id, h.document_id) for h in hits] == [(2, 10)]
    assert hits[0].keyword_score == hits[0].score and hits[0].dense_score is None


def test_repeated_upsert_is_idempotent(store: IndexStore) -> None:
    assert store.upsert(7, MODEL, DIM, RECORDS) == 3
    moved = chunk(2, 11, "熊猫吃竹子", vec(0, 0, 0, 1))
    assert store.upsert(7, MODEL, DIM, [moved]) == 3
    with store.read(7) as kb:
        assert kb is not None
        assert kb.documents[2] == 11
        assert kb.vectors.search(vec(0, 0, 0, 1), k=1)[0][0] == 2


def test_a_different_model_or_dim_is_a_mismatch(store: IndexStore) -> None:
    with pytest.raises(EmbeddingMismatchError, match=f"{MODEL}.*other-model"):
        store.upsert(7, "other-model", DIM, RECORDS)
    with pytest.raises(EmbeddingMismatchError, match="dim 8"):
        store.upsert(7, MODEL, 8, [])
    with pytest.raises(EmbeddingMismatchError) as err:
        search(store, None, keyword_request("熊猫", model="other-model"))
    assert err.value.error_type == "embedding_mismatch"


def test_an_emptied_index_accepts_a_new_model(store: IndexStore) -> None:
    assert store.remove(7, [1, 2, 3]) == (3, 0)
    assert store.upsert(7, "other-model", 2, [chunk(5, 1, "x", vec(1, 1))]) == 1
    assert store.stats(7).embedding_model == "other-model"


def test_remove_and_drop(store: IndexStore, tmp_path: Path) -> None:
    assert store.remove(7, [1, 99]) == (1, 2)
    assert search(store, None, keyword_request("长城")) == []
    assert store.remove(8, [1]) == (0, 0)
    assert store.drop(7) is True
    assert not (tmp_path / "7").exists()
    assert store.stats(7).count == 0
    assert store.drop(7) is False
    assert search(store, None, keyword_request("熊猫")) == []


def test_unknown_kb_searches_to_nothing(tmp_path: Path) -> None:
    assert search(IndexStore(tmp_path), None, keyword_request("熊猫")) == []


def test_load_keeps_only_chunks_every_file_knows(tmp_path: Path) -> None:
    kb = KbIndex.create(tmp_path / "1", MODEL, DIM)
    kb.upsert(RECORDS[:2])
    kb.save()
    # A crash after the vectors of the next batch were written but before the rest.
    kb.upsert(RECORDS[2:])
    kb.vectors.save(tmp_path / "1" / VECTORS_FILE)
    loaded = KbIndex.load(tmp_path / "1")
    assert loaded is not None
    assert loaded.documents == {1: 10, 2: 10}
    assert loaded.vectors.ids() == {1, 2} == loaded.keywords.ids()


def test_an_unreadable_index_is_moved_aside_and_served_empty(tmp_path: Path) -> None:
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / META_FILE).write_text("{not json", encoding="utf-8")
    store = IndexStore(tmp_path)
    assert store.stats(3).count == 0
    assert store.ids(3) == []
    aside = list(tmp_path.glob("3.corrupt-*"))
    assert len(aside) == 1
    assert (aside[0] / META_FILE).read_text(encoding="utf-8") == "{not json"
    assert not (tmp_path / "3").exists()


def b64(values: list[float]) -> str:
    return base64.b64encode(np.array(values, dtype="<f4").tobytes()).decode("ascii")


def test_a_wire_vector_is_decoded_and_normalised() -> None:
    parsed = ChunkIn.model_validate(
        {"chunk_id": 1, "document_id": 1, "text": "x", "vector": b64([3.0, 4.0])}
    )
    vector = unit_vector(parsed.vector, dim=2, chunk_id=1)
    assert vector.dtype == np.float32
    assert vector.tolist() == pytest.approx([0.6, 0.8])
    assert parse_vector(parsed.model_dump(mode="json")["vector"]).tolist() == [3.0, 4.0]


@pytest.mark.parametrize("encoded", ["not base64!", base64.b64encode(b"\x00\x00\x80").decode()])
def test_a_wire_vector_that_is_not_float32_bytes_is_refused(encoded: str) -> None:
    with pytest.raises(ValidationError, match="not base64"):
        ChunkIn.model_validate({"chunk_id": 42, "document_id": 1, "text": "x", "vector": encoded})


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        (b64([1.0, 2.0, 3.0]), "3 floats, expected dim 2"),
        (b64([float("nan"), 1.0]), "NaN"),
        (b64([0.0, 0.0]), "all zeros"),
    ],
)
def test_unit_vector_refuses_bad_input(encoded: str, message: str) -> None:
    with pytest.raises(ValidationFailedError, match=f"chunk 42: .*{message}"):
        unit_vector(parse_vector(encoded), dim=2, chunk_id=42)


def test_concurrent_writers_to_one_kb_lose_nothing(tmp_path: Path) -> None:
    store = IndexStore(tmp_path)

    def write(worker: int) -> None:
        for n in range(10):
            chunk_id = worker * 100 + n
            record = chunk(chunk_id, worker, f"文档{worker} 段落{n}", vec(1, worker, n, 1))
            store.upsert(5, MODEL, DIM, [record])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.stats(5).count == 40
    assert IndexStore(tmp_path).stats(5).count == 40


def test_a_base_past_the_ann_threshold_is_snapshotted_approximate(tmp_path: Path) -> None:
    settings = RetrievalSettings(ann_min_vectors=300, ann_nprobe=4)
    store = IndexStore(tmp_path, settings)
    rng = np.random.default_rng(0)

    def batch(start: int) -> list[ChunkIn]:
        return [
            chunk(i, i, f"段落{i}", vec(*rng.standard_normal(DIM)))
            for i in range(start, start + 200)
        ]

    store.upsert(2, MODEL, DIM, batch(0))
    store.upsert(2, MODEL, DIM, batch(200))
    meta = read_json(tmp_path / "2" / META_FILE)
    assert meta["vectors_trained_for"] == 400 and meta["count"] == 400
    with IndexStore(tmp_path, settings).read(2) as kb:
        assert kb is not None and kb.vectors.approximate
        assert kb.vectors.ids() == set(range(400))


def test_terms_counted_before_the_lock_index_like_the_text(tmp_path: Path) -> None:
    plain, counted = IndexStore(tmp_path / "a"), IndexStore(tmp_path / "b")
    plain.upsert(1, MODEL, DIM, RECORDS)
    counted.upsert(1, MODEL, DIM, RECORDS, [term_counts(r.text) for r in RECORDS])
    for query in ("长城", "熊猫 竹林", "eiffel tower"):
        assert search(plain, None, keyword_request(query, kb=1)) == search(
            counted, None, keyword_request(query, kb=1)
        )


def test_an_index_moved_aside_is_flagged_until_marked_rebuilt(tmp_path: Path) -> None:
    for kb_id in (3, 4):
        (tmp_path / str(kb_id)).mkdir()
        (tmp_path / str(kb_id) / META_FILE).write_text("{not json", encoding="utf-8")
    store = IndexStore(tmp_path)
    assert store.rebuild_needed() == []
    assert store.check_all() == [3, 4]  # found without a request for either
    # The flags outlive the process: a retriever restarted again still reports them.
    again = IndexStore(tmp_path)
    assert again.rebuild_needed() == [3, 4]
    # Chunks coming back do not clear it; only the rebuild's end does (or dropping the base).
    vector = np.ones(4, dtype=np.float32) / 2
    again.upsert(3, "m", 4, [ChunkIn(chunk_id=1, document_id=1, text="重建", vector=vector)])
    assert again.check_all() == [3, 4]
    again.mark_rebuilt(3)
    again.mark_rebuilt(3)  # twice is harmless
    again.drop(4)  # its directory is already aside: nothing to drop but the flag
    assert again.rebuild_needed() == []
    assert IndexStore(tmp_path).check_all() == []


def test_texts_are_replaced_and_removed_with_their_chunks(
    store: IndexStore, tmp_path: Path
) -> None:
    assert store.texts(7, [1, 2, 3, 99]) == {r.chunk_id: r.text for r in RECORDS}
    store.upsert(7, MODEL, DIM, [chunk(2, 10, "熊猫吃竹子", vec(0, 1, 0, 0))])
    assert store.remove(7, [1, 3, 99]) == (2, 1)
    assert store.texts(7, [1, 2, 3]) == {2: "熊猫吃竹子"}
    # Nothing else on disk holds a text: a reopened store reads the same, and no other file.
    assert IndexStore(tmp_path).texts(7, [1, 2, 3]) == {2: "熊猫吃竹子"}
    assert not list((tmp_path / "7").glob("*.sqlite"))
    assert store.texts(8, [1]) == {}


def test_an_index_from_before_tantivy_is_moved_aside_for_a_rebuild(tmp_path: Path) -> None:
    (tmp_path / "6").mkdir()
    meta = {"version": 2, "embedding_model": MODEL, "dim": DIM, "documents": {}}
    (tmp_path / "6" / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    (tmp_path / "6" / "keywords.json").write_text('{"version": 1, "docs": {}}', encoding="utf-8")
    store = IndexStore(tmp_path)
    assert store.check_all() == [6]
    assert store.upsert(6, MODEL, DIM, RECORDS) == 3
    assert IndexStore(tmp_path).ids(6) == [1, 2, 3]
