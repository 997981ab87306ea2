"""Registry of per-knowledge-base indexes: lazy loading, one lock per base, journaled writes.

The chunks' texts, which the rerankers read, are stored in the keyword index beside their terms.
An index that cannot be read is moved aside and flagged in ``rebuild-needed/`` until the
ingestion worker has rebuilt it from the database: the flag outlives a restart of the retriever.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retriever.index_owner import IndexOwner
from retriever.kb_index import KbIndex
from retriever.ranking import rank
from retriever.vector_index import AnnConfig
from services.common.chunks import ChunkIn, ScoredChunk
from services.common.embedding import EmbeddingSpace, require_same_embedding
from services.common.errors import ZhikuError
from services.common.retriever_schemas import IndexStats, RetrieverSearchRequest
from services.common.settings import RetrievalSettings

logger = logging.getLogger(__name__)

REBUILD_DIR = "rebuild-needed"  # one empty file per knowledge base, named by its id


class IndexStore:
    """Every knowledge base's index under ``root / str(kb_id)``, loaded on first use."""

    def __init__(
        self,
        root: Path,
        retrieval: RetrievalSettings | None = None,
        owner: IndexOwner | None = None,
    ) -> None:
        retrieval = retrieval or RetrievalSettings()
        self._root = root
        self._owner = owner  # the retriever process's hold of ``root`` (retriever.backend)
        self._ann = AnnConfig.from_settings(retrieval)
        self._compact_fraction = retrieval.journal_compact_fraction
        self._loaded: dict[int, KbIndex | None] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._registry_lock = threading.Lock()

    def directory(self, kb_id: int) -> Path:
        """Where the index of ``kb_id`` lives on disk."""
        return self._root / str(kb_id)

    def texts(self, kb_id: int, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The stored texts of the given chunks of ``kb_id``, which the rerankers read."""
        with self.read(kb_id) as kb:
            return kb.keywords.texts(chunk_ids) if kb is not None else {}

    @contextmanager
    def read(self, kb_id: int) -> Iterator[KbIndex | None]:
        """The index of ``kb_id`` (None if absent), held under its lock for the block's duration."""
        # FAISS and the postings dicts are not safe to read while another thread mutates them.
        with self._lock(kb_id):
            yield self._get(kb_id)

    def search(
        self, req: RetrieverSearchRequest, query_vector: NDArray[np.float32] | None
    ) -> list[ScoredChunk]:
        """The best ``req.top_k`` chunks of ``req.kb_id`` in ``req.mode`` (none if it is absent)."""
        with self.read(req.kb_id) as kb:
            return [] if kb is None or kb.count == 0 else rank(kb, req, query_vector)

    def stats(self, kb_id: int) -> IndexStats:
        """Count and embedding model of one index (nulls when it does not exist)."""
        with self.read(kb_id) as kb:
            if kb is None:
                return IndexStats(count=0, embedding_model=None, dim=None)
            return IndexStats(count=kb.count, embedding_model=kb.embedding_model, dim=kb.dim)

    def searched_model(self, kb_id: int) -> str | None:
        """The embedding model of a base with chunks; None when it has none."""
        stats = self.stats(kb_id)
        return stats.embedding_model if stats.count else None

    def close(self) -> None:
        """Let another process own the directory; every change is already on disk."""
        if self._owner is not None:
            self._owner.release()

    def check_all(self) -> list[int]:
        """Load every index on disk, moving unreadable ones aside; answers rebuild_needed()."""
        for directory in sorted(self._root.glob("[0-9]*")):
            if directory.is_dir() and directory.name.isdigit():
                with self.read(int(directory.name)):
                    pass
        return self.rebuild_needed()

    def rebuild_needed(self) -> list[int]:
        """Knowledge bases whose index was moved aside as unreadable and is not rebuilt yet."""
        flags = self._root / REBUILD_DIR
        return sorted(int(p.name) for p in flags.glob("[0-9]*") if p.name.isdigit())

    def mark_rebuilt(self, kb_id: int) -> None:
        """The ingestion worker has put every chunk of ``kb_id`` back: drop its flag."""
        flag = self._root / REBUILD_DIR / str(kb_id)
        if flag.exists():
            flag.unlink(missing_ok=True)
            logger.info("index %d: rebuilt from the database", kb_id)

    def ids(self, kb_id: int) -> list[int]:
        """Every chunk id of one index, ascending (empty when it does not exist)."""
        with self.read(kb_id) as kb:
            return sorted(kb.documents) if kb is not None else []

    def upsert(
        self,
        kb_id: int,
        embedding_model: str,
        dim: int,
        chunks: Sequence[ChunkIn],
        terms: Sequence[dict[str, int]] | None = None,
    ) -> int:
        """Add or replace chunks (unit vectors) and persist; answers the index's count afterwards.

        ``terms``: each chunk's ``term_counts(text)``, counted before the lock by the caller.
        """
        with self._lock(kb_id):
            kb = self._get(kb_id)
            fresh = kb is None or kb.count == 0
            if kb is None or fresh:
                # An empty index has nothing to stay compatible with, so it takes the new model.
                kb = KbIndex.create(self.directory(kb_id), embedding_model, dim)
            else:
                require_same_embedding(
                    EmbeddingSpace(f"knowledge base {kb_id}", kb.embedding_model, kb.dim),
                    EmbeddingSpace("the request", embedding_model, dim),
                )
            with self._persisting(kb_id):
                kb.upsert(chunks, terms)
                if fresh:  # a snapshot names the model; later batches go to the journal
                    kb.save()
                else:
                    kb.log_upsert(chunks)
                kb.checkpoint(self._ann, self._compact_fraction)
            self._set(kb_id, kb)
            logger.info("index %d: upserted %d chunks, total %d", kb_id, len(chunks), kb.count)
            return kb.count

    def remove(self, kb_id: int, chunk_ids: list[int]) -> tuple[int, int]:
        """Remove chunks and persist; answers (removed, remaining)."""
        with self._lock(kb_id):
            kb = self._get(kb_id)
            if kb is None:
                return 0, 0
            with self._persisting(kb_id):
                present = [c for c in set(chunk_ids) if c in kb.documents]
                removed = kb.remove(present)
                kb.log_remove(present)
                kb.checkpoint(self._ann, self._compact_fraction)
            logger.info("index %d: removed %d chunks, total %d", kb_id, removed, kb.count)
            return removed, kb.count

    def drop(self, kb_id: int) -> bool:
        """Delete the whole index directory; answers whether there was one."""
        with self._lock(kb_id):
            directory = self.directory(kb_id)
            existed = directory.exists()
            shutil.rmtree(directory, ignore_errors=True)
            (self._root / REBUILD_DIR / str(kb_id)).unlink(missing_ok=True)
            self._set(kb_id, None)
            logger.info("index %d: dropped (existed: %s)", kb_id, existed)
            return existed

    @contextmanager
    def _persisting(self, kb_id: int) -> Iterator[None]:
        """Forget the in-memory index if a change fails half-way; the disk has the truth."""
        try:
            yield
        except BaseException:
            with self._registry_lock:
                self._loaded.pop(kb_id, None)
            raise

    def _lock(self, kb_id: int) -> threading.Lock:
        # Locks outlive a drop on purpose: a writer waiting on the old lock must not race a new one.
        with self._registry_lock:
            return self._locks.setdefault(kb_id, threading.Lock())

    def _get(self, kb_id: int) -> KbIndex | None:
        """Cached index, loading it from disk once; the caller holds the kb lock."""
        with self._registry_lock:
            if kb_id in self._loaded:
                return self._loaded[kb_id]
        # A writer killed mid-save leaves its temporary file; the renamed files never are torn.
        for leftover in self.directory(kb_id).glob(".*.tmp"):
            logger.warning("index %d: removing %s left by an interrupted save", kb_id, leftover)
            leftover.unlink(missing_ok=True)
        try:
            kb = KbIndex.load(self.directory(kb_id), self._ann)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            kb = None
            self._quarantine(kb_id, exc)
        self._set(kb_id, kb)
        return kb

    def _quarantine(self, kb_id: int, exc: Exception) -> None:
        """Move an unreadable index aside and serve an empty one in its place."""
        # The database holds every chunk, so the ingestion worker's reconciliation rebuilds the
        # index from it; refusing every request until someone intervenes would help nobody.
        directory = self.directory(kb_id)
        aside = directory.with_name(f"{kb_id}.corrupt-{time.time_ns()}")
        try:
            directory.rename(aside)
        except OSError as move_exc:
            raise ZhikuError(
                f"the index of knowledge base {kb_id} cannot be read ({exc}) "
                f"nor moved aside ({move_exc})"
            ) from exc
        flags = self._root / REBUILD_DIR
        flags.mkdir(parents=True, exist_ok=True)
        (flags / str(kb_id)).touch()
        logger.error(
            "INDEX CORRUPT: knowledge base %d cannot be loaded (%s: %s); moved to %s and "
            "serving an empty index until the ingestion worker rebuilds it from the database",
            kb_id,
            type(exc).__name__,
            exc,
            aside,
        )

    def _set(self, kb_id: int, kb: KbIndex | None) -> None:
        with self._registry_lock:
            self._loaded[kb_id] = kb
