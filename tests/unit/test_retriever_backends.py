"""One contract for both index backends: FAISS + Tantivy files, and Milvus (through Milvus Lite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from retriever.backend import ChunkIndex, create_chunk_index
from services.common.chunks import ChunkIn, ScoredChunk
from services.common.errors import EmbeddingMismatchError
from services.common.retriever_schemas import RetrieverSearchRequest
from services.common.settings import Settings

DIM = 4
MODEL = "test-model"
Opener = Callable[[], ChunkIndex]


def vec(*values: float) -> NDArray[np.float32]:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def chunk(chunk_id: int, document_id: int, text: str, vector: NDArray[np.float32]) -> ChunkIn:
    return ChunkIn(chunk_id=chunk_id, document_id=document_id, text=text, vector=vector)


RECORDS = [
    chunk(1, 10, "长城是中国古代的军事防御工程", vec(1, 0, 0, 0)),
    chunk(2, 10, "熊猫生活在四川的竹林里", vec(0, 1, 0, 0)),
    chunk(3, 20, "The Eiffel Tower stands in Paris", vec(0, 0, 1, 0)),
    chunk(4, 20, "機器學習是人工智慧的一個分支", vec(0, 0, 0, 1)),
]


def request(query: str, mode: str, kb: int = 1, top_k: int = 3) -> RetrieverSearchRequest:
    return RetrieverSearchRequest.model_validate(
        {"kb_id": kb, "query": query, "top_k": top_k, "mode": mode, "embedding_model": MODEL}
    )


@pytest.fixture(params=["local", "milvus"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    retrieval = {"backend": request.param, "milvus_uri": str(tmp_path / "milvus.db")}
    settings = Settings.model_validate({"data_dir": str(tmp_path / "data"), "retrieval": retrieval})
    opened: list[ChunkIndex] = []

    def open_index() -> ChunkIndex:
        for index in opened:  # one open handle at a time, as one retriever process holds
            index.close()
        opened.clear()
        opened.append(create_chunk_index(settings))
        return opened[0]

    yield open_index
    for index in opened:
        index.close()


def ids(hits: list[ScoredChunk]) -> list[int]:
    return [h.chunk_id for h in hits]


def test_add_search_each_mode_and_read_texts(opener: Opener) -> None:
    index = opener()
    assert index.upsert(1, MODEL, DIM, RECORDS) == 4
    stats = index.stats(1)
    assert (stats.count, stats.embedding_model, stats.dim) == (4, MODEL, DIM)
    assert index.ids(1) == [1, 2, 3, 4]
    keyword = index.search(request("熊猫 竹林", "keyword"), None)
    assert ids(keyword)[:1] == [2] and keyword[0].document_id == 10
    assert keyword[0].keyword_score is not None and keyword[0].keyword_score > 0
    # Traditional query, Traditional text, both folded: and a Simplified query finds it too.
    assert ids(index.search(request("机器学习", "keyword"), None))[:1] == [4]
    assert ids(index.search(request("EIFFEL", "keyword"), None))[:1] == [3]
    dense = index.search(request("anything", "dense"), vec(0, 0, 1, 0.1))
    assert ids(dense)[0] == 3 and dense[0].dense_score == pytest.approx(0.995, abs=0.01)
    assert index.texts(1, [2, 99]) == {2: RECORDS[1].text}


def test_hybrid_puts_a_chunk_both_kinds_find_first(opener: Opener) -> None:
    index = opener()
    index.upsert(1, MODEL, DIM, RECORDS)
    # The vector points at chunk 1, the words at chunk 2 and, less, chunk 1: 1 is found by both.
    hits = index.search(request("长城 熊猫 竹林", "hybrid", top_k=4), vec(1, 0.1, 0, 0))
    assert ids(hits)[0] == 1
    assert set(ids(hits[:2])) == {1, 2}
    assert hits[0].dense_score is not None and hits[0].keyword_score is not None


def test_delete_replace_and_isolation_between_bases(opener: Opener) -> None:
    index = opener()
    index.upsert(1, MODEL, DIM, RECORDS)
    index.upsert(2, MODEL, DIM, [chunk(12, 5, "熊猫吃竹子", vec(0, 1, 0, 0))])
    assert ids(index.search(request("熊猫", "keyword", kb=2), None)) == [12]
    assert index.remove(1, [2, 12, 99]) == (1, 3)  # 12 belongs to base 2: untouched
    assert 2 not in ids(index.search(request("熊猫", "keyword"), None))
    assert index.ids(2) == [12] and index.texts(1, [2]) == {}
    index.upsert(1, MODEL, DIM, [chunk(3, 21, "熊猫也去了巴黎", vec(0, 0, 1, 0))])
    hits = index.search(request("熊猫", "keyword"), None)
    assert ids(hits) == [3] and hits[0].document_id == 21
    assert index.stats(1).count == 3
    assert index.drop(2) is True and index.drop(2) is False
    assert index.stats(2).count == 0 and index.search(request("熊猫", "keyword", kb=2), None) == []


def test_a_reopened_backend_has_everything_acknowledged(opener: Opener) -> None:
    index = opener()
    index.upsert(1, MODEL, DIM, RECORDS)
    index.remove(1, [1])
    index.upsert(1, MODEL, DIM, [chunk(5, 30, "熊猫基地在成都", vec(0, 1, 0, 0))])
    again = opener()
    assert again.ids(1) == [2, 3, 4, 5]
    assert set(ids(again.search(request("熊猫", "keyword"), None))) == {2, 5}
    assert ids(again.search(request("x", "dense"), vec(0, 0, 0, 1)))[0] == 4


def test_another_model_is_refused_until_the_base_is_empty(opener: Opener) -> None:
    index = opener()
    index.upsert(1, MODEL, DIM, RECORDS[:1])
    with pytest.raises(EmbeddingMismatchError):
        index.upsert(1, "other-model", DIM, RECORDS[1:2])
    assert index.remove(1, [1]) == (1, 0)
    assert index.upsert(1, "other-model", 2, [chunk(7, 1, "x", vec(1, 1))]) == 1
    assert index.stats(1).embedding_model == "other-model"


def test_the_milvus_backend_needs_a_uri() -> None:
    with pytest.raises(ValueError, match="MILVUS_URI"):
        Settings.model_validate({"retrieval": {"backend": "milvus"}})


def test_a_word_inside_a_longer_word_is_found(opener: Opener) -> None:
    index = opener()
    index.upsert(1, MODEL, DIM, [chunk(5, 30, "北京大学成立于1898年。", vec(1, 1, 0, 0)), *RECORDS])
    assert ids(index.search(request("大学", "keyword"), None))[:1] == [5]


def test_milvus_chunks_analysed_the_earlier_way_are_carried_over(tmp_path: Path) -> None:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from retriever.milvus_index import MilvusIndex

    uri = str(tmp_path / "milvus.db")
    index = MilvusIndex(uri)
    index.upsert(1, MODEL, DIM, [])  # the base's model, then its chunks as an earlier version
    index.close()
    client = MilvusClient(uri)
    schema = client.create_schema(auto_id=False)
    schema.add_field("chunk_id", DataType.INT64, is_primary=True)
    schema.add_field("kb_id", DataType.INT64, is_partition_key=True)
    schema.add_field("document_id", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=1000)
    analyzer = {"tokenizer": "jieba"}
    schema.add_field("folded", DataType.VARCHAR, max_length=1000, enable_analyzer=True,
                     analyzer_params=analyzer)  # fmt: skip
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    bm25 = Function(name="bm25", function_type=FunctionType.BM25,
                    input_field_names=["folded"], output_field_names=["sparse"])  # fmt: skip
    schema.add_function(bm25)
    params = client.prepare_index_params()
    params.add_index("dense", index_type="FLAT", metric_type="IP")
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(f"zhiku_chunks_d{DIM}", schema=schema, index_params=params)
    rows = [{"chunk_id": c.chunk_id, "kb_id": 1, "document_id": c.document_id, "text": c.text,
             "folded": c.text, "dense": c.vector.tolist()} for c in RECORDS]  # fmt: skip
    client.insert(f"zhiku_chunks_d{DIM}", rows)
    index = MilvusIndex(uri)
    try:
        assert index.ids(1) == [1, 2, 3, 4]  # the first use of the dim carries them over
        assert ids(index.search(request("熊猫 竹林", "keyword"), None))[:1] == [2]
        assert not client.has_collection(f"zhiku_chunks_d{DIM}")
    finally:
        client.close()
        index.close()
