"""One knowledge base's indexes: vectors, keywords and the chunk -> document map, kept in step.

On disk: a snapshot (three files, each written atomically, ``meta.json`` last) plus the journal
that ``meta.json`` names, holding every change since. Loading reads the snapshot and replays the
journal; :meth:`KbIndex.checkpoint` writes a new snapshot once the journal has grown past a
fraction of it, so the cost of a change stays proportional to the change.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.journal import Journal, Removed, Upserted
from retriever.keyword_index import KeywordIndex
from retriever.persist import atomic_write_json, read_json
from retriever.vector_index import AnnConfig, FaissIndex
from services.common.chunks import ChunkIn

logger = logging.getLogger(__name__)

VECTORS_FILE = "vectors.faiss"
KEYWORDS_FILE = "keywords.json"
META_FILE = "meta.json"
META_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: a snapshot without journal
# Below this a journal is cheap to replay whatever the snapshot's size.
MIN_COMPACT_BYTES = 1 << 20


def _journal_name() -> str:
    # A fresh name per snapshot: a journal left by an older snapshot can never be replayed.
    return f"journal-{secrets.token_hex(6)}.log"


class KbIndex:
    """Dense and keyword indexes of one knowledge base, persisted under one directory."""

    def __init__(
        self,
        directory: Path,
        embedding_model: str,
        vectors: FaissIndex,
        keywords: KeywordIndex,
        documents: dict[int, int],
        journal_name: str | None = None,
    ) -> None:
        self.directory = directory
        self.embedding_model = embedding_model
        self.vectors = vectors
        self.keywords = keywords
        self.documents = documents
        self.journal = Journal(directory / (journal_name or _journal_name()))
        self.snapshot_bytes = 0

    @classmethod
    def create(cls, directory: Path, embedding_model: str, dim: int) -> KbIndex:
        """An empty index (nothing is written until :meth:`save`)."""
        return cls(directory, embedding_model, FaissIndex.create(dim), KeywordIndex(), {})

    @classmethod
    def load(cls, directory: Path, ann: AnnConfig | None = None) -> KbIndex | None:
        """Read the snapshot in ``directory`` and replay its journal; None when none was saved."""
        meta_path = directory / META_FILE
        if not meta_path.exists():
            return None
        meta: dict[str, Any] = read_json(meta_path)
        if meta.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"{meta_path}: unknown index version {meta.get('version')!r}")
        trained_for = meta.get("vectors_trained_for")
        index = cls(
            directory,
            str(meta["embedding_model"]),
            FaissIndex.load(directory / VECTORS_FILE, int(trained_for) if trained_for else None),
            KeywordIndex.load(directory / KEYWORDS_FILE),
            {int(c): int(d) for c, d in meta["documents"].items()},
            meta.get("journal"),
        )
        if index.vectors.dim != int(meta["dim"]):
            raise ValueError(f"{meta_path}: dim {meta['dim']} but vectors have {index.vectors.dim}")
        index._reconcile()
        index.snapshot_bytes = index._snapshot_size()
        index._replay()
        if ann is not None:
            index.vectors.tune(ann)
        return index

    @property
    def dim(self) -> int:
        return self.vectors.dim

    @property
    def count(self) -> int:
        return len(self.documents)

    def upsert(
        self, chunks: Sequence[ChunkIn], terms: Sequence[dict[str, int]] | None = None
    ) -> None:
        """Add or replace chunks (unit vectors) in both indexes (in memory; see :meth:`log_upsert`).

        ``terms``: each chunk's ``term_counts(text)``, when the caller already has them.
        """
        if not chunks:
            return
        if terms is not None and len(terms) != len(chunks):
            raise ValueError(f"{len(terms)} term counts for {len(chunks)} chunks")
        ids = np.array([c.chunk_id for c in chunks], dtype=np.int64)
        self.vectors.upsert(ids, np.vstack([c.vector for c in chunks]))
        for n, chunk in enumerate(chunks):
            if terms is None:
                self.keywords.upsert(chunk.chunk_id, chunk.text)
            else:
                self.keywords.upsert_terms(chunk.chunk_id, terms[n])
            self.documents[chunk.chunk_id] = chunk.document_id

    def remove(self, chunk_ids: list[int]) -> int:
        """Remove chunks from both indexes; answers how many were present."""
        present = sorted({c for c in chunk_ids if c in self.documents})
        self.vectors.remove(np.array(present, dtype=np.int64))
        for chunk_id in present:
            self.keywords.remove(chunk_id)
            del self.documents[chunk_id]
        return len(present)

    def log_upsert(self, chunks: Sequence[ChunkIn]) -> None:
        """Make an applied upsert durable: one journal record, fsynced."""
        if not chunks:
            return
        self.journal.append(
            Upserted(
                np.array([c.chunk_id for c in chunks], dtype=np.int64),
                np.array([c.document_id for c in chunks], dtype=np.int64),
                [c.text for c in chunks],
                np.vstack([c.vector for c in chunks]).astype(np.float32),
            )
        )

    def log_remove(self, chunk_ids: list[int]) -> None:
        """Make an applied removal durable: one journal record, fsynced."""
        if chunk_ids:
            self.journal.append(Removed(np.array(sorted(chunk_ids), dtype=np.int64)))

    def checkpoint(self, ann: AnnConfig, compact_fraction: float) -> None:
        """Pick the dense index kind for the count; write a snapshot if that or the journal asks."""
        rebuilt = self.vectors.tune(ann)
        limit = max(MIN_COMPACT_BYTES, compact_fraction * self.snapshot_bytes)
        if rebuilt or self.journal.size > limit:
            logger.info(
                "index %s: snapshot of %d chunks (journal %d bytes)",
                self.directory,
                self.count,
                self.journal.size,
            )
            self.save()

    def save(self) -> None:
        """Write a full snapshot, each file atomically, meta last as it names what is complete."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.vectors.save(self.directory / VECTORS_FILE)
        self.keywords.save(self.directory / KEYWORDS_FILE)
        journal = Journal(self.directory / _journal_name())
        meta = {
            "version": META_VERSION,
            "embedding_model": self.embedding_model,
            "dim": self.dim,
            "count": self.count,
            "journal": journal.path.name,
            "vectors_trained_for": self.vectors.trained_for,
            "documents": {str(c): d for c, d in self.documents.items()},
        }
        atomic_write_json(self.directory / META_FILE, meta)
        self.journal = journal
        self._discard_other_journals()
        self.snapshot_bytes = self._snapshot_size()

    def _replay(self) -> None:
        replayed = 0
        for entry in self.journal.replay():
            if isinstance(entry, Removed):
                self.remove([int(c) for c in entry.chunk_ids])
            else:
                self.upsert(
                    [
                        ChunkIn(chunk_id=int(c), document_id=int(d), text=text, vector=vector)
                        for c, d, text, vector in zip(
                            entry.chunk_ids,
                            entry.document_ids,
                            entry.texts,
                            entry.vectors,
                            strict=True,
                        )
                    ]
                )
            replayed += 1
        if replayed:
            logger.info("index %s: replayed %d journal records", self.directory, replayed)
        self._discard_other_journals()

    def _discard_other_journals(self) -> None:
        # Journals of older snapshots: their changes are in the current one.
        for stale in self.directory.glob("journal-*.log"):
            if stale.name != self.journal.path.name:
                stale.unlink(missing_ok=True)

    def _snapshot_size(self) -> int:
        names = (VECTORS_FILE, KEYWORDS_FILE, META_FILE)
        return sum((self.directory / n).stat().st_size for n in names)

    def _reconcile(self) -> None:
        # A crash between the three atomic writes can leave one file a batch ahead of the others.
        # Keep only chunks that every file knows; the journal or ingestion re-adds the rest.
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
