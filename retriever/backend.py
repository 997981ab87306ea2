"""What the retriever's endpoints need from an index backend: FAISS+Tantivy or Milvus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from services.common.chunks import ChunkIn, ScoredChunk
from services.common.errors import NotReadyError
from services.common.retriever_schemas import IndexStats, RetrieverSearchRequest
from services.common.settings import Settings


class ChunkIndex(Protocol):
    """Per-knowledge-base chunks (unit vectors, terms, texts), searched and changed by id."""

    def upsert(
        self,
        kb_id: int,
        embedding_model: str,
        dim: int,
        chunks: Sequence[ChunkIn],
        terms: Sequence[dict[str, int]] | None = None,
    ) -> int:
        """Add or replace chunks durably; answers the base's count afterwards."""
        ...

    def remove(self, kb_id: int, chunk_ids: list[int]) -> tuple[int, int]:
        """Remove chunks durably; answers (removed, remaining)."""
        ...

    def drop(self, kb_id: int) -> bool:
        """Forget a whole base; answers whether it had an index."""
        ...

    def stats(self, kb_id: int) -> IndexStats:
        """Count, embedding model and dim of a base (nulls when it has no index)."""
        ...

    def searched_model(self, kb_id: int) -> str | None:
        """The embedding model of a base that has chunks to search (None: nothing to search).

        Asked before every search, so cheaper than ``stats`` (Milvus counts rows slowly).
        """
        ...

    def ids(self, kb_id: int) -> list[int]:
        """Every chunk id of a base, ascending."""
        ...

    def texts(self, kb_id: int, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The stored texts of the given chunks."""
        ...

    def search(
        self, req: RetrieverSearchRequest, query_vector: NDArray[np.float32] | None
    ) -> list[ScoredChunk]:
        """The best ``req.top_k`` chunks in ``req.mode`` (the vector is None for keyword)."""
        ...

    def close(self) -> None:
        """Release what the backend holds (connections, servers) at shutdown."""
        ...

    def check_all(self) -> list[int]:
        """Check every base at start-up; answers rebuild_needed()."""
        ...

    def rebuild_needed(self) -> list[int]:
        """Bases whose index must be rebuilt from the database."""
        ...

    def mark_rebuilt(self, kb_id: int) -> None:
        """The ingestion worker has put every chunk of ``kb_id`` back."""
        ...


def create_chunk_index(settings: Settings) -> ChunkIndex:
    """The index backend the settings name; the one place it is chosen."""
    retrieval = settings.retrieval
    match retrieval.backend:
        case "local":
            from retriever.index_owner import IndexOwner
            from retriever.store import IndexStore

            # One process owns the files; a second retriever on them stops here (IndexInUseError).
            owner = IndexOwner(settings.index_dir)
            return IndexStore(settings.index_dir, retrieval, owner)
        case "milvus":
            try:
                from retriever.milvus_index import MilvusIndex
            except ImportError as exc:
                raise NotReadyError(
                    "the milvus backend needs pymilvus and milvus-lite (see pyproject.toml)"
                ) from exc
            assert retrieval.milvus_uri is not None  # checked by RetrievalSettings
            return MilvusIndex(retrieval.milvus_uri)
