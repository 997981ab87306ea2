"""The background indexer: every chunk sent once, in order, coalesced while an add is in flight."""

from __future__ import annotations

import threading
from typing import cast

import numpy as np
import pytest

from ingestion.indexer import BackgroundIndexer
from services.common.chunks import ChunkIn
from services.common.errors import NotReadyError
from services.common.retriever_client import RetrieverClient


class FakeRetriever:
    """Records each add; an add can be held until the test releases it, or fail."""

    def __init__(self, hold: bool = False, fail: Exception | None = None) -> None:
        self.adds: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.fail = fail

    def add(self, kb_id: int, model: str, dim: int, items: list[ChunkIn]) -> int:
        self.started.set()
        self.release.wait()
        if self.fail is not None:
            raise self.fail
        self.adds.append([it.chunk_id for it in items])
        return sum(map(len, self.adds))


def _items(first: int, count: int) -> list[ChunkIn]:
    vector = np.zeros(4, dtype=np.float32)
    return [
        ChunkIn(chunk_id=i, document_id=1, text=f"chunk {i}", vector=vector)
        for i in range(first, first + count)
    ]


def _indexer(retriever: FakeRetriever, min_add: int, max_add: int = 2048) -> BackgroundIndexer:
    client = cast(RetrieverClient, retriever)
    return BackgroundIndexer(client, 1, "fake", 4, min_add=min_add, max_add=max_add)


def test_every_chunk_is_sent_once_in_order() -> None:
    retriever = FakeRetriever()
    with _indexer(retriever, min_add=3) as indexer:
        for start in range(0, 10, 2):
            indexer.put(_items(start, 2))
    assert [cid for add in retriever.adds for cid in add] == list(range(10))
    assert indexer.indexed == 10 and indexer.adds == len(retriever.adds)


def test_chunks_put_while_an_add_is_in_flight_go_out_together() -> None:
    retriever = FakeRetriever(hold=True)
    with _indexer(retriever, min_add=2) as indexer:
        indexer.put(_items(0, 2))
        assert retriever.started.wait(10)
        for start in range(2, 12, 2):  # five more batches while the first add is held
            indexer.put(_items(start, 2))
        retriever.release.set()
    assert retriever.adds == [[0, 1], list(range(2, 12))]


def test_big_puts_are_split_and_a_short_remainder_goes_out_at_the_end() -> None:
    retriever = FakeRetriever()
    with _indexer(retriever, min_add=4, max_add=4) as indexer:
        indexer.put(_items(0, 10))
    assert retriever.adds == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_failed_add_fails_the_block_with_its_error() -> None:
    retriever = FakeRetriever(fail=NotReadyError("retriever down"))
    with pytest.raises(NotReadyError, match="retriever down"), _indexer(retriever, 1) as indexer:
        indexer.put(_items(0, 3))
    assert retriever.adds == []


def test_an_error_in_the_block_drops_what_is_left() -> None:
    retriever = FakeRetriever()
    with pytest.raises(RuntimeError, match="embedding broke"), _indexer(retriever, 100) as ix:
        ix.put(_items(0, 5))
        raise RuntimeError("embedding broke")
    assert retriever.adds == []


def test_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="min_add"):
        _indexer(FakeRetriever(), min_add=10, max_add=5)
