"""One knowledge base's indexes: vectors, keywords and the chunk -> document map, kept in step.

On disk: the Tantivy keyword index (``keywords/``, committed on every change), and for the
dense half a snapshot (``vectors.faiss`` then ``meta.json``, each written atomically) plus the
journal that ``meta.json`` names, holding every change since. Loading opens Tantivy, reads the
snapshot, replays the journal and keeps only the chunks both halves know (a crash between
Tantivy's commit and the journal's fsync leaves one change unacknowledged on one side).
:meth:`KbIndex.checkpoint` writes a new snapshot once the journal has grown past a fraction of
it, so the cost of a change stays proportional to the change.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from retriever.journal import Journal, Removed, Upserted
from retriever.keyword_index import KeywordIndex, term_counts
from retriever.persist import atomic_write_json, read_json
from retriever.vector_index import AnnConfig, FaissIndex
from services.common.chunks import ChunkIn

logger = logging.getLogger(__name__)

VECTORS_FILE = "vectors.faiss"
KEYWORDS_DIR = "keywords"
META_FILE = "meta.json"
# Version 3: keywords in Tantivy; 4: cut by jieba-rs (numbers with units are one word). Older
# indexes are moved aside and rebuilt from the database, so the query and the index agree.
META_VERSION = 4
READABLE_VERSIONS = (4,)
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
        """An empty index (an empty keyword index replaces any in ``directory``; no snapshot)."""
        keywords = KeywordIndex.create(directory / KEYWORDS_DIR)
        return cls(directory, embedding_model, FaissIndex.create(dim), keywords, {})

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
            FaissIndex.load(
                directory / VECTORS_FILE,
                int(trained_for) if trained_for else None,
                mmap=ann is not None and ann.mmap,
            ),
            KeywordIndex.open(directory / KEYWORDS_DIR),
            {int(c): int(d) for c, d in meta["documents"].items()},
            meta.get("journal"),
        )
        if index.vectors.dim != int(meta["dim"]):
            raise ValueError(f"{meta_path}: dim {meta['dim']} but vectors have {index.vectors.dim}")
        index.snapshot_bytes = index._snapshot_size()
        index._replay()
        index._reconcile()
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
        """Add or replace chunks (unit vectors): keywords committed, vectors see :meth:`log_upsert`.

        ``terms``: each chunk's ``term_counts(text)``, when the caller already has them.
        """
        if not chunks:
            return
        if terms is not None and len(terms) != len(chunks):
            raise ValueError(f"{len(terms)} term counts for {len(chunks)} chunks")
        counted = terms if terms is not None else [term_counts(c.text) for c in chunks]
        self.keywords.upsert_many(
            [(c.chunk_id, t) for c, t in zip(chunks, counted, strict=True)],
            [c.text for c in chunks],
        )
        self._apply_vectors(
            np.array([c.chunk_id for c in chunks], dtype=np.int64),
            np.array([c.document_id for c in chunks], dtype=np.int64),
            np.vstack([c.vector for c in chunks]),
        )

    def remove(self, chunk_ids: list[int]) -> int:
        """Remove chunks from both indexes (keywords committed); answers how many were present."""
        present = sorted({c for c in chunk_ids if c in self.documents})
        self.keywords.remove_many(present)
        self._remove_vectors(present)
        return len(present)

    def log_upsert(self, chunks: Sequence[ChunkIn]) -> None:
        """Make an applied upsert durable: one journal record, fsynced."""
        if not chunks:
            return
        self.journal.append(
            Upserted(
                np.array([c.chunk_id for c in chunks], dtype=np.int64),
                np.array([c.document_id for c in chunks], dtype=np.int64),
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
        """Write the dense snapshot, each file atomically, meta last as it names what is complete.

        The keyword index needs nothing here: every change to it was committed when made.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self.vectors.save(self.directory / VECTORS_FILE)
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
            # Tantivy already holds these changes: the journal is the dense half's only.
            if isinstance(entry, Removed):
                self._remove_vectors([int(c) for c in entry.chunk_ids if int(c) in self.documents])
            else:
                self._apply_vectors(entry.chunk_ids, entry.document_ids, entry.vectors)
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
        names = (VECTORS_FILE, META_FILE)
        return sum((self.directory / n).stat().st_size for n in names)

    def _apply_vectors(
        self, ids: NDArray[np.int64], documents: NDArray[np.int64], vectors: NDArray[np.float32]
    ) -> None:
        self.vectors.upsert(ids, vectors)
        self.documents.update(zip(ids.tolist(), documents.tolist(), strict=True))

    def _remove_vectors(self, present: list[int]) -> None:
        self.vectors.remove(np.array(present, dtype=np.int64))
        for chunk_id in present:
            del self.documents[chunk_id]

    def _reconcile(self) -> None:
        # A crash can leave one side a batch ahead: Tantivy committed a change whose journal
        # record was never written (unacknowledged), or the vectors file was renamed before
        # meta.json. Keep only chunks that every part knows; ingestion re-sends the rest.
        vector_ids, documents = self.vectors.ids(), set(self.documents)
        # One batch either adds ids or removes them, so equal counts mean equal id sets.
        same_count = self.keywords.count == len(documents)
        keyword_ids = documents if same_count else self.keywords.ids()
        complete = vector_ids & keyword_ids & documents
        extra = (vector_ids | keyword_ids | documents) - complete
        if not extra:
            return
        logger.warning(
            "index %s: dropping %d chunks not present in every part", self.directory, len(extra)
        )
        self.vectors.remove(np.array(sorted(extra & vector_ids), dtype=np.int64))
        self.keywords.remove_many(extra & keyword_ids)
        for chunk_id in extra:
            self.documents.pop(chunk_id, None)
