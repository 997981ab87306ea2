"""One document through parsing, chunking, embedding and indexing, with progress on its job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ingestion.chunking import chunk_text
from ingestion.loaders import load_text
from services.common.embedding import Embedder
from services.common.errors import DocumentParseError, EmbeddingMismatchError, ZhikuError
from services.common.filetypes import CONTENT_TYPES
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.retriever_client import IndexItem, RetrieverClient
from services.common.settings import Settings

logger = logging.getLogger(__name__)

KIND_BY_CONTENT_TYPE = {v: k for k, v in CONTENT_TYPES.items()}
INDEX_BATCH = 512


@dataclass
class IngestionContext:
    settings: Settings
    sessions: sessionmaker[Session]
    embedder: Embedder
    retriever: RetrieverClient


def _progress(ctx: IngestionContext, job_id: str, stage: str, progress: float) -> None:
    with ctx.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.stage, job.progress = stage, round(progress, 4)


def _fail(ctx: IngestionContext, job_id: str, doc_id: int, message: str, error_type: str) -> None:
    logger.warning("job %s failed (%s): %s", job_id, error_type, message)
    with ctx.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is not None:
            job.stage, job.error, job.error_type = "failed", message, error_type
        doc = session.get(Document, doc_id)
        if doc is not None:
            doc.status, doc.error = "failed", message


def _clear_chunks(ctx: IngestionContext, doc: Document) -> None:
    """A retried job starts clean: no duplicate chunks, rows or vectors."""
    with ctx.sessions.begin() as session:
        ids = list(session.scalars(select(Chunk.id).where(Chunk.document_id == doc.id)))
        if ids:
            ctx.retriever.delete(doc.knowledge_base_id, ids)
            session.execute(delete(Chunk).where(Chunk.document_id == doc.id))


def _embed(ctx: IngestionContext, job_id: str, texts: list[str]) -> list[IndexItem]:
    batch = ctx.settings.embedding.batch_size * 4
    vectors: list[NDArray[np.float32]] = []
    for start in range(0, len(texts), batch):
        vectors.extend(ctx.embedder.embed(texts[start : start + batch]))
        _progress(ctx, job_id, "embedding", 0.15 + 0.7 * min(1.0, (start + batch) / len(texts)))
    return [IndexItem(0, 0, t, v) for t, v in zip(texts, vectors, strict=True)]


def _store_chunks(ctx: IngestionContext, doc: Document, texts: list[str]) -> list[int]:
    rows = [
        {
            "document_id": doc.id,
            "knowledge_base_id": doc.knowledge_base_id,
            "position": i,
            "text": t,
        }
        for i, t in enumerate(texts)
    ]
    with ctx.sessions.begin() as session:
        result = session.scalars(
            insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows
        )
        return list(result)


def _run(ctx: IngestionContext, job_id: str, doc: Document, kb: KnowledgeBase) -> int:
    if ctx.embedder.name != kb.embedding_model or ctx.embedder.dim != kb.embedding_dim:
        raise EmbeddingMismatchError(
            f"knowledge base '{kb.name}' uses {kb.embedding_model} ({kb.embedding_dim}d) but this "
            f"worker embeds with {ctx.embedder.name} ({ctx.embedder.dim}d)"
        )
    _progress(ctx, job_id, "parsing", 0.02)
    kind = KIND_BY_CONTENT_TYPE.get(doc.content_type, "txt")
    text = load_text(Path(doc.storage_path), kind, ctx.settings.parsing)
    _progress(ctx, job_id, "chunking", 0.1)
    texts = chunk_text(text, ctx.settings.chunking.size, ctx.settings.chunking.overlap)
    if not texts:
        raise DocumentParseError(f"{doc.filename}: no text could be extracted")
    _clear_chunks(ctx, doc)
    items = _embed(ctx, job_id, texts)
    ids = _store_chunks(ctx, doc, texts)
    _progress(ctx, job_id, "indexing", 0.85)
    for start in range(0, len(items), INDEX_BATCH):
        batch = [
            IndexItem(cid, doc.id, it.text, it.vector)
            for cid, it in zip(
                ids[start : start + INDEX_BATCH], items[start : start + INDEX_BATCH], strict=True
            )
        ]
        ctx.retriever.add(kb.id, kb.embedding_model, kb.embedding_dim, batch)
        _progress(ctx, job_id, "indexing", 0.85 + 0.15 * (start + len(batch)) / len(items))
    return len(ids)


def ingest_job(ctx: IngestionContext, job_id: str) -> None:
    """Run one job to done or failed-with-reason; never leaves it hanging."""
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        doc = session.get(Document, job.document_id) if job and job.document_id else None
        kb = session.get(KnowledgeBase, doc.knowledge_base_id) if doc else None
    if job is None or doc is None or kb is None:
        logger.warning("job %s: its document is gone; nothing to do", job_id)
        return
    if job.stage in ("done", "failed"):
        # A message redelivered after the start-up reconciliation already queued it again.
        logger.info("job %s: already %s; not run again", job_id, job.stage)
        return
    try:
        count = _run(ctx, job_id, doc, kb)
    except ZhikuError as exc:
        _fail(ctx, job_id, doc.id, exc.message, exc.error_type)
        return
    except Exception as exc:
        logger.exception("job %s: unexpected failure", job_id)
        _fail(ctx, job_id, doc.id, f"internal error while ingesting: {exc}", "internal_error")
        return
    with ctx.sessions.begin() as session:
        session.execute(
            update(Document)
            .where(Document.id == doc.id)
            .values(status="ready", chunk_count=count, error=None)
        )
        job_row = session.get(Job, job_id)
        if job_row is not None:
            job_row.stage, job_row.progress = "done", 1.0
            job_row.error = job_row.error_type = None  # a note left by a resumed run
    logger.info("job %s: %s indexed as %d chunks", job_id, doc.filename, count)
