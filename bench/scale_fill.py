"""Putting bench.retrieval_scale's corpus into a running suite: rows, then chunks with vectors."""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

from bench.scale_corpus import CHUNKS_PER_DOCUMENT, KB, Corpus
from services.client import GatewayClient
from services.common.chunks import ChunkIn
from services.common.models import Chunk, Document
from services.common.retriever_client import RetrieverClient
from services.common.retriever_schemas import MAX_ITEMS_PER_REQUEST
from services.common.schemas import KnowledgeBasePublic
from services.common.settings import Settings

logger = logging.getLogger("bench.retrieval_scale")


def fill_suite(
    data_dir: Path, client: GatewayClient, corpus: Corpus
) -> tuple[dict[str, float], KnowledgeBasePublic]:
    """Create the knowledge base, bulk-insert its rows, push every chunk to the retriever."""
    kb = client.create_knowledge_base(KB, "bench.retrieval_scale")
    _wait_for_reconciliation(data_dir / "logs" / "ingestion.log")
    settings = Settings()
    started = time.monotonic()
    engine = create_engine(settings.sqlalchemy_url)
    n_docs = math.ceil(len(corpus.texts) / CHUNKS_PER_DOCUMENT)
    with engine.begin() as conn:
        conn.execute(insert(Document), [_document_row(kb.id, n) for n in range(1, n_docs + 1)])
        conn.execute(insert(Chunk), [_chunk_row(kb.id, i, t) for i, t in enumerate(corpus.texts)])
    engine.dispose()
    rows_s = time.monotonic() - started
    started = time.monotonic()
    # Two requests in flight: one is parsed and tokenised while the other holds the index lock.
    with ThreadPoolExecutor(max_workers=2) as pool:
        starts = range(0, len(corpus.texts), MAX_ITEMS_PER_REQUEST)
        for total in pool.map(lambda start: _push(settings, kb, corpus, start), starts):
            logger.info("indexed up to %d chunks (%.0f s)", total, time.monotonic() - started)
    return {"rows_s": rows_s, "index_s": time.monotonic() - started}, kb


def _push(settings: Settings, kb: KnowledgeBasePublic, corpus: Corpus, start: int) -> int:
    end = min(start + MAX_ITEMS_PER_REQUEST, len(corpus.texts))
    items = [
        ChunkIn(
            chunk_id=i + 1,
            document_id=i // CHUNKS_PER_DOCUMENT + 1,
            text=corpus.texts[i],
            vector=corpus.vectors[i],
        )
        for i in range(start, end)
    ]
    retriever = RetrieverClient(
        settings.retriever_url, timeout_s=600, token=settings.internal_token
    )
    try:
        return retriever.add(kb.id, kb.embedding_model, kb.embedding_dim, items)
    finally:
        retriever.close()


def _document_row(kb_id: int, n: int) -> dict[str, Any]:
    return {
        "id": n,
        "knowledge_base_id": kb_id,
        "filename": f"scale-{n:05d}.txt",
        "content_type": "text/plain",
        "size_bytes": 0,
        "sha256": f"{n:064x}",
        "storage_path": "",
        "status": "ready",
        "chunk_count": CHUNKS_PER_DOCUMENT,
    }


def _chunk_row(kb_id: int, i: int, text: str) -> dict[str, Any]:
    document = i // CHUNKS_PER_DOCUMENT + 1
    position = i % CHUNKS_PER_DOCUMENT
    return {
        "id": i + 1,
        "document_id": document,
        "knowledge_base_id": kb_id,
        "position": position,
        "text": text,
    }


def _wait_for_reconciliation(log: Path, timeout_s: float = 300) -> None:
    # Rows written before the worker's start-up reconciliation could be "re-embedded" by it.
    deadline = time.monotonic() + timeout_s
    while "start-up reconciliation" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start-up reconciliation in {log} after {timeout_s:.0f} s")
        time.sleep(0.5)
