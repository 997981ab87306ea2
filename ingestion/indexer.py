"""Send embedded chunks to the retriever from a background thread while the next batch embeds.

Chunks handed over while an add is in flight wait and go out together in the next add, so the
retriever gets few, large requests and the worker never waits for one except at the very end.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from services.common.chunks import ChunkIn
from services.common.retriever_client import RetrieverClient

logger = logging.getLogger(__name__)

MIN_ADD = 64  # below this an add waits for more chunks (unless it is the last one)
MAX_ADD = 2048  # bounds one request's body (~4 KB a chunk with its vector and text)


class BackgroundIndexer:
    """Context manager: ``put()`` batches in, leaving the block waits until all are indexed."""

    def __init__(
        self,
        retriever: RetrieverClient,
        kb_id: int,
        model: str,
        dim: int,
        min_add: int = MIN_ADD,
        max_add: int = MAX_ADD,
    ) -> None:
        if not 1 <= min_add <= max_add:
            raise ValueError(f"need 1 <= min_add ({min_add}) <= max_add ({max_add})")
        self._retriever, self._kb_id, self._model, self._dim = retriever, kb_id, model, dim
        self._min_add, self._max_add = min_add, max_add
        self._pending: list[ChunkIn] = []
        self._closed = False
        self._error: Exception | None = None
        self._ready = threading.Condition()
        self.adds = 0
        self.indexed = 0
        self.busy_s = 0.0  # time spent in add calls, mostly beside the embedding
        self._thread = threading.Thread(target=self._run, name=f"indexer-kb{kb_id}", daemon=True)

    def __enter__(self) -> BackgroundIndexer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._ready:
            if exc_type is not None:
                self._pending.clear()  # the job failed: what is left is not worth sending
            self._closed = True
            self._ready.notify()
        self._thread.join()
        if exc_type is None and self._error is not None:
            raise self._error

    def put(self, items: list[ChunkIn]) -> None:
        """Queue chunks for indexing; raises at once if an earlier add failed."""
        with self._ready:
            if self._error is not None:
                raise self._error
            self._pending.extend(items)
            self._ready.notify()

    def _next_batch(self) -> list[ChunkIn]:
        with self._ready:
            self._ready.wait_for(lambda: self._closed or len(self._pending) >= self._min_add)
            batch = self._pending[: self._max_add]
            del self._pending[: self._max_add]
            return batch

    def _run(self) -> None:
        while batch := self._next_batch():
            start = time.perf_counter()
            try:
                self._retriever.add(self._kb_id, self._model, self._dim, batch)
            except Exception as exc:  # handed to the job's thread, which fails the job with it
                with self._ready:
                    self._error = exc
                    self._pending.clear()
                return
            self.busy_s += time.perf_counter() - start
            self.adds += 1
            self.indexed += len(batch)
            logger.debug("indexed %d chunks in kb %d", len(batch), self._kb_id)
