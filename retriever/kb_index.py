"""One knowledge base's indexes: vectors, keywords and the chunk -> document map, kept in step."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retriever.keyword_index import KeywordIndex
from retriever.persist import atomic_write_json, read_json
from retriever.vector_index import FaissIndex

logger = logging.getLogger(__name__)

VECTORS_FILE = "vectors.faiss"
KEYWORDS_FILE = "keywords.json"
META_FILE = "meta.json"
META_VERSION = 1


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as the indexes need it: ids, text for keywords, unit vector for dense search."""

    chunk_id: int
    document_id: int
    text: str
    vector: NDArray[np.float32]


class KbIndex:
    """Dense and keyword indexes of one knowledge base, persisted under one directory."""

    def __init__(
        self,
        directory: Path,
        embedding_model: str,
        vectors: FaissIndex,
        keywords: KeywordIndex,
        documents: dict[int, int],
    ) -> None:
        self.directory = directory
        self.embedding_model = embedding_model
        self.vectors = vectors
        self.keywords = keywords
        self.documents = documents

    @classmethod
    def create(cls, directory: Path, embedding_model: str, dim: int) -> KbIndex:
        """An empty index (nothing is written until :meth:`save`)."""
        return cls(directory, embedding_model, FaissIndex.create(dim), KeywordIndex(), {})

    @classmethod
    def load(cls, directory: Path) -> KbIndex | None:
        """Read the index in ``directory``; None when none was ever saved there."""
        meta_path = directory / META_FILE
        if not meta_path.exists():
            return None
        meta: dict[str, Any] = read_json(meta_path)
        if meta.get("version") != META_VERSION:
            raise ValueError(f"{meta_path}: unknown index version {meta.get('version')!r}")
        index = cls(
            directory,
            str(meta["embedding_model"]),
            FaissIndex.load(directory / VECTORS_FILE),
            KeywordIndex.load(directory / KEYWORDS_FILE),
            {int(c): int(d) for c, d in meta["documents"].items()},
        )
        if index.vectors.dim != int(meta["dim"]):
            raise ValueError(f"{meta_path}: dim {meta['dim']} but vectors have {index.vectors.dim}")
        index._reconcile()
        return index

    @property
    def dim(self) -> int:
        return self.vectors.dim

    @property
    def count(self) -> int:
        return len(self.documents)

    def upsert(self, records: list[ChunkRecord]) -> None:
        """Add or replace chunks in both indexes (in memory; call :meth:`save` to persist)."""
        if not records:
            return
        ids = np.array([r.chunk_id for r in records], dtype=np.int64)
        self.vectors.upsert(ids, np.vstack([r.vector for r in records]))
        for record in records:
            self.keywords.upsert(record.chunk_id, record.text)
            self.documents[record.chunk_id] = record.document_id

    def remove(self, chunk_ids: list[int]) -> int:
        """Remove chunks from both indexes; answers how many were present."""
        present = sorted({c for c in chunk_ids if c in self.documents})
        self.vectors.remove(np.array(present, dtype=np.int64))
        for chunk_id in present:
            self.keywords.remove(chunk_id)
            del self.documents[chunk_id]
        return len(present)

    def save(self) -> None:
        """Persist all three files, each atomically; meta last, as it names what is complete."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.vectors.save(self.directory / VECTORS_FILE)
        self.keywords.save(self.directory / KEYWORDS_FILE)
        meta = {
            "version": META_VERSION,
            "embedding_model": self.embedding_model,
            "dim": self.dim,
            "count": self.count,
            "documents": {str(c): d for c, d in self.documents.items()},
        }
        atomic_write_json(self.directory / META_FILE, meta)

    def _reconcile(self) -> None:
        # A crash between the three atomic writes can leave one file a batch ahead of the others.
        # Keep only chunks that every file knows; ingestion re-adds the rest when it retries.
        vector_ids, keyword_ids = self.vectors.ids(), self.keywords.ids()
        complete = vector_ids & keyword_ids & set(self.documents)
        extra = (vector_ids | keyword_ids | set(self.documents)) - complete
        if not extra:
            return
        logger.warning(
            "index %s: dropping %d chunks not present in every file", self.directory, len(extra)
        )
        self.vectors.remove(np.array(sorted(extra & vector_ids), dtype=np.int64))
        for chunk_id in extra:
            self.keywords.remove(chunk_id)
            self.documents.pop(chunk_id, None)
