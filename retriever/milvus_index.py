"""The Milvus backend: chunks of every knowledge base in Milvus, the retriever holding no state.

One collection of chunks per embedding dimension (Milvus fixes a vector field's dim), with the
knowledge base as partition key; a BM25 sparse field that Milvus builds with its jieba analyzer
in search mode (the cut of the local keyword index) from the text folded to Simplified,
lowercased and without punctuation, as the local index reads it; hybrid search ranked by
Milvus's RRF. A small collection records each base's embedding model and dim.
``uri`` is a Milvus server (``http://milvus:19530``) or a Milvus Lite file (tests).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

from services.common.chunks import ChunkIn, ScoredChunk
from services.common.embedding import EmbeddingSpace, require_same_embedding
from services.common.retriever_schemas import IndexStats, RetrieverSearchRequest
from services.common.script import fold

logger = logging.getLogger(__name__)

KBS = "zhiku_kbs"
MAX_TEXT_BYTES = 65_535
RRF_K = 60  # the constant of retriever.fusion, so both backends fuse alike
_LITE_USERS: Counter[str] = Counter()  # open MilvusIndex objects per uri


# Search mode cuts a word and the words inside it (北京大学: 北京, 大学, 北京大学), as the local
# keyword index's jieba-rs cut does; with the default exact mode R@1 of keyword search was 0.021
# below the local index, now 0.004 (bench/results/retrieval_backends.md).
ANALYZER = {"tokenizer": {"type": "jieba", "mode": "search"}}
_PUNCTUATION = re.compile(r"[^\w]+")  # Milvus's jieba keeps punctuation as words; ours drops it


def _chunks_name(dim: int) -> str:
    return f"zhiku_chunks_s_d{dim}"


def _analysed(text: str) -> str:
    """What the BM25 field is built from, and what a query is matched as."""
    return _PUNCTUATION.sub(" ", fold(text)).strip()


class MilvusIndex:
    """Every knowledge base's chunks in one Milvus (server or Lite file)."""

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._client = MilvusClient(uri)
        _LITE_USERS[uri] += 1
        if not self._client.has_collection(KBS):
            self._create_kbs()
        self._client.load_collection(KBS)
        self._loaded: set[str] = {KBS}
        # Milvus Lite searches rows not yet sealed in a segment by brute force, 10-20x slower
        # than the indexed segment (a 3,000-chunk hybrid search: ~370 ms against ~30 ms), and
        # seals them only when told: a Lite collection written since is flushed before the next
        # search (0.1-0.3 s once), not after each write, so a bulk fill seals once. A server
        # seals segments on its own, and frequent flushes there make small segments.
        self._lite = "://" not in uri
        self._unsealed: set[str] = set()

    def close(self) -> None:
        """Close the connection; a Milvus Lite file's in-process server is stopped too."""
        self._client.close()
        _LITE_USERS[self._uri] -= 1
        if self._lite and _LITE_USERS[self._uri] == 0:
            # pymilvus starts one Lite server per file, shared in the process, until exit.
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self._uri)

    def upsert(
        self,
        kb_id: int,
        embedding_model: str,
        dim: int,
        chunks: Sequence[ChunkIn],
        terms: Sequence[dict[str, int]] | None = None,
    ) -> int:
        """Add or replace chunks; Milvus analyses the text itself, so ``terms`` is unused."""
        stats = self.stats(kb_id)
        if stats.embedding_model is not None and stats.count > 0:
            require_same_embedding(
                EmbeddingSpace(f"knowledge base {kb_id}", stats.embedding_model, stats.dim),
                EmbeddingSpace("the request", embedding_model, dim),
            )
        elif (stats.embedding_model, stats.dim) != (embedding_model, dim):
            self._client.upsert(
                KBS, [{"kb_id": kb_id, "model": embedding_model, "dim": dim, "dummy": [0.0, 0.0]}]
            )
        if chunks:
            collection = self._chunks(dim)
            self._client.upsert(collection, [_row(kb_id, c) for c in chunks])
            self._written(collection)
            logger.info("milvus kb %d: upserted %d chunks", kb_id, len(chunks))
        return self.stats(kb_id).count

    def remove(self, kb_id: int, chunk_ids: list[int]) -> tuple[int, int]:
        """Remove chunks of ``kb_id``; answers (removed, remaining)."""
        dim = self._dim(kb_id)
        if dim is None:
            return 0, 0
        collection = self._chunks(dim)
        wanted = sorted({int(c) for c in chunk_ids})
        present = self._query_ids(collection, f"kb_id == {kb_id} and chunk_id in {wanted}")
        if present:
            self._client.delete(collection, ids=present)
            self._written(collection)
        return len(present), self.stats(kb_id).count

    def drop(self, kb_id: int) -> bool:
        """Delete every chunk of ``kb_id`` and its record."""
        dim = self._dim(kb_id)
        if dim is None:
            return False
        self._client.delete(self._chunks(dim), filter=f"kb_id == {kb_id}")
        self._written(self._chunks(dim))
        self._client.delete(KBS, ids=[kb_id])
        return True

    def stats(self, kb_id: int) -> IndexStats:
        """Count, embedding model and dim of one base (nulls when it has none)."""
        rows = self._client.query(KBS, filter=f"kb_id == {kb_id}", output_fields=["model", "dim"])
        if not rows:
            return IndexStats(count=0, embedding_model=None, dim=None)
        dim = int(rows[0]["dim"])
        counted = self._client.query(
            self._chunks(dim), filter=f"kb_id == {kb_id}", output_fields=["count(*)"]
        )
        count = int(counted[0]["count(*)"]) if counted else 0
        return IndexStats(count=count, embedding_model=str(rows[0]["model"]), dim=dim)

    def searched_model(self, kb_id: int) -> str | None:
        """The base's embedding model from its record; a base emptied by deletes finds nothing."""
        rows = self._client.query(KBS, filter=f"kb_id == {kb_id}", output_fields=["model"])
        return str(rows[0]["model"]) if rows else None

    def ids(self, kb_id: int) -> list[int]:
        """Every chunk id of ``kb_id``, ascending."""
        dim = self._dim(kb_id)
        if dim is None:
            return []
        return sorted(self._query_ids(self._chunks(dim), f"kb_id == {kb_id}"))

    def texts(self, kb_id: int, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The texts of the given chunks of ``kb_id``."""
        dim = self._dim(kb_id)
        wanted = sorted({int(c) for c in chunk_ids})
        if dim is None or not wanted:
            return {}
        rows = self._client.query(
            self._chunks(dim),
            filter=f"kb_id == {kb_id} and chunk_id in {wanted}",
            output_fields=["chunk_id", "text"],
        )
        return {int(r["chunk_id"]): str(r["text"]) for r in rows}

    def search(
        self, req: RetrieverSearchRequest, query_vector: NDArray[np.float32] | None
    ) -> list[ScoredChunk]:
        """Dense, BM25 or RRF-fused hybrid search in Milvus, best first."""
        dim = self._dim(req.kb_id)
        if dim is None:
            return []
        collection = self._chunks(dim)
        self._seal(collection)
        where = f"kb_id == {req.kb_id}"
        if req.mode == "keyword":
            hits = self._keyword(collection, where, req.query, req.top_k)
            return [_scored(h, s, None, s) for h, s in hits]
        if query_vector is None:
            raise ValueError(f"a {req.mode} search needs the query's vector")
        vector = query_vector.astype(np.float32).tolist()
        if req.mode == "dense":
            found = self._client.search(
                collection,
                data=[vector],
                anns_field="dense",
                limit=req.top_k,
                filter=where,
                search_params={"metric_type": "IP"},
                output_fields=["document_id"],
            )[0]
            return [_scored(h, float(h["distance"]), float(h["distance"]), None) for h in found]
        return self._hybrid(collection, where, req, vector)

    def check_all(self) -> list[int]:
        """Milvus keeps the data: nothing to check or rebuild at start-up."""
        return []

    def rebuild_needed(self) -> list[int]:
        """Never any: Milvus owns its own recovery."""
        return []

    def mark_rebuilt(self, kb_id: int) -> None:
        """Nothing is flagged, so nothing to clear."""

    def _hybrid(
        self, collection: str, where: str, req: RetrieverSearchRequest, vector: list[float]
    ) -> list[ScoredChunk]:
        depth = max(req.top_k * 4, 20)
        requests = [
            AnnSearchRequest([vector], "dense", {"metric_type": "IP"}, depth, expr=where),
            AnnSearchRequest(
                [_analysed(req.query)], "sparse", {"metric_type": "BM25"}, depth, expr=where
            ),
        ]
        fused = self._client.hybrid_search(
            collection,
            requests,
            RRFRanker(RRF_K),
            limit=req.top_k,
            output_fields=["document_id", "dense"],
        )[0]
        # The per-kind scores the rerankers and the answer gate read: cosine and BM25.
        keyword = {_id(h): s for h, s in self._keyword(collection, where, req.query, depth)}
        query = np.asarray(vector, dtype=np.float32)
        return [
            _scored(
                h,
                float(h["distance"]),
                float(np.dot(query, np.asarray(h["entity"]["dense"], dtype=np.float32))),
                keyword.get(_id(h)),
            )
            for h in fused
        ]

    def _keyword(
        self, collection: str, where: str, query: str, k: int
    ) -> list[tuple[dict[str, Any], float]]:
        folded = _analysed(query)
        if not folded:
            return []
        found = self._client.search(
            collection,
            data=[folded],
            anns_field="sparse",
            limit=k,
            filter=where,
            search_params={"metric_type": "BM25"},
            output_fields=["document_id"],
        )[0]
        # Milvus Lite reports BM25 negated (smaller is better); a server reports it positive.
        return [(h, abs(float(h["distance"]))) for h in found]

    def _written(self, collection: str) -> None:
        if self._lite:
            self._unsealed.add(collection)

    def _seal(self, collection: str) -> None:
        """Flush a Milvus Lite collection written since its last search (see __init__)."""
        if collection in self._unsealed:
            self._client.flush(collection)
            self._unsealed.discard(collection)

    def _dim(self, kb_id: int) -> int | None:
        rows = self._client.query(KBS, filter=f"kb_id == {kb_id}", output_fields=["dim"])
        return int(rows[0]["dim"]) if rows else None

    def _query_ids(self, collection: str, where: str) -> list[int]:
        rows = self._client.query(collection, filter=where, output_fields=["chunk_id"])
        return [int(r["chunk_id"]) for r in rows]

    def _chunks(self, dim: int) -> str:
        name = _chunks_name(dim)
        if name in self._loaded:
            return name
        if not self._client.has_collection(name):
            self._create_chunks(name, dim)
        self._copy_earlier(f"zhiku_chunks_d{dim}", name)
        self._client.load_collection(name)
        self._loaded.add(name)
        return name

    def _copy_earlier(self, earlier: str, name: str) -> None:
        """Chunks of a collection analysed the earlier way, moved into ``name`` re-analysed.

        Batch by batch, each written here before it is deleted there, so a move cut short
        goes on where it stopped the next time the collection is opened.
        """
        if not self._client.has_collection(earlier):
            return
        self._client.load_collection(earlier)
        fields = ["chunk_id", "kb_id", "document_id", "text", "dense"]
        moved = 0
        while batch := self._client.query(earlier, "chunk_id >= 0", fields, limit=1000):
            self._client.upsert(name, [{**r, "folded": _analysed(r["text"])} for r in batch])
            ids = [int(r["chunk_id"]) for r in batch]
            self._client.delete(earlier, filter=f"chunk_id in {ids}")
            moved += len(batch)
        self._written(name)
        self._client.drop_collection(earlier)
        logger.info("milvus: %d chunks re-analysed from %s into %s", moved, earlier, name)

    def _create_kbs(self) -> None:
        schema = self._client.create_schema(auto_id=False)
        schema.add_field("kb_id", DataType.INT64, is_primary=True)
        schema.add_field("model", DataType.VARCHAR, max_length=512)
        schema.add_field("dim", DataType.INT64)
        schema.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants one vector field
        index = self._client.prepare_index_params()
        index.add_index("dummy", index_type="FLAT", metric_type="L2")
        self._client.create_collection(
            KBS, schema=schema, index_params=index, consistency_level="Strong"
        )

    def _create_chunks(self, name: str, dim: int) -> None:
        schema = self._client.create_schema(auto_id=False)
        schema.add_field("chunk_id", DataType.INT64, is_primary=True)
        schema.add_field("kb_id", DataType.INT64, is_partition_key=True)
        schema.add_field("document_id", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field(
            "folded",
            DataType.VARCHAR,
            max_length=MAX_TEXT_BYTES,
            enable_analyzer=True,
            analyzer_params=ANALYZER,
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["folded"],
                output_field_names=["sparse"],
            )
        )
        index = self._client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self._client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Strong"
        )


def _row(kb_id: int, chunk: ChunkIn) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "kb_id": kb_id,
        "document_id": chunk.document_id,
        "text": chunk.text,
        "folded": _analysed(chunk.text),
        "dense": chunk.vector.astype(np.float32).tolist(),
    }


def _id(hit: dict[str, Any]) -> int:
    # A search hit names its primary key "id" on a server and by field name in Milvus Lite.
    return int(hit["id"] if "id" in hit else hit["chunk_id"])


def _scored(
    hit: dict[str, Any], score: float, dense: float | None, keyword: float | None
) -> ScoredChunk:
    return ScoredChunk(
        chunk_id=_id(hit),
        document_id=int(hit["entity"]["document_id"]),
        score=score,
        dense_score=dense,
        keyword_score=keyword,
    )
