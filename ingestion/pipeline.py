"""One document through parsing, chunking, embedding and indexing, with progress on its job."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingestion.indexer import MAX_ADD, BackgroundIndexer
from ingestion.loaders import load_sections
from ingestion.located_chunks import LocatedChunk, chunk_sections
from ingestion.parse_progress import ProgressCallback
from services.common import jobs
from services.common.chunks import ChunkIn
from services.common.embedding import Embedder, EmbeddingSpace, require_same_embedding
from services.common.errors import DocumentParseError, ZhikuError
from services.common.filetypes import CONTENT_TYPES
from services.common.jobs import JobStage
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings

logger = logging.getLogger(__name__)

KIND_BY_CONTENT_TYPE = {v: k for k, v in CONTENT_TYPES.items()}
DELETED = "the document was deleted while it was being ingested"


class DocumentDeletedError(Exception):
    """The job's document is gone: stop adding its vectors and take back those already added."""

    def __init__(self, chunk_ids: list[int]) -> None:
        super().__init__(DELETED)
        self.chunk_ids = chunk_ids


class StageClock:
    """Seconds spent in each stage of one job, for the log line that closes it."""

    def __init__(self) -> None:
        self.start = self._last = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.note = ""

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {s:.2f}" for name, s in self.stages.items())
        note = f"; {self.note}" if self.note else ""
        return f"{self._last - self.start:.2f} s ({parts}){note}"


@dataclass
class IngestionContext:
    settings: Settings
    sessions: sessionmaker[Session]
    embedder: Embedder
    retriever: RetrieverClient


def _progress(ctx: IngestionContext, job_id: str, stage: JobStage, progress: float) -> None:
    with ctx.sessions.begin() as session:
        jobs.start_stage(session, job_id, stage, progress)


def _page_progress(ctx: IngestionContext, job_id: str) -> ProgressCallback:
    """Parsing progress from pages read (a long PDF, OCR): at most one update a second."""
    last = -1.0

    def report(done: int, total: int) -> None:
        nonlocal last
        if time.monotonic() - last < 1.0 and done < total:
            return
        last = time.monotonic()
        try:
            _progress(ctx, job_id, JobStage.PARSING, 0.02 + 0.08 * done / max(total, 1))
        except SQLAlchemyError as exc:  # progress is a courtesy; the parse goes on
            logger.warning("job %s: could not record parsing progress: %s", job_id, exc)

    return report


def _fail(ctx: IngestionContext, job_id: str, message: str, error_type: str) -> None:
    logger.warning("job %s failed (%s): %s", job_id, error_type, message)
    with ctx.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is not None:
            jobs.fail_job(session, job, message, error_type)


def _document_exists(ctx: IngestionContext, doc_id: int) -> bool:
    with ctx.sessions() as session:
        return session.scalar(select(Document.id).where(Document.id == doc_id)) is not None


def _take_back(ctx: IngestionContext, kb_id: int, chunk_ids: list[int]) -> None:
    """Delete a deleted document's vectors; if the retriever fails, start-up reconcile will."""
    try:
        ctx.retriever.delete(kb_id, chunk_ids)
    except ZhikuError as exc:
        logger.error("could not remove %d vectors of a deleted document: %s", len(chunk_ids), exc)


def _clear_chunks(ctx: IngestionContext, doc: Document) -> None:
    """A retried job starts clean: no duplicate chunks, rows or vectors."""
    with ctx.sessions.begin() as session:
        ids = list(session.scalars(select(Chunk.id).where(Chunk.document_id == doc.id)))
        if ids:
            ctx.retriever.delete(doc.knowledge_base_id, ids)
            session.execute(delete(Chunk).where(Chunk.document_id == doc.id))


def _store_chunks(ctx: IngestionContext, doc: Document, chunks: list[LocatedChunk]) -> list[int]:
    """All rows in one bulk insert; their ids key the vectors in the retriever."""
    rows = [
        {
            "document_id": doc.id,
            "knowledge_base_id": doc.knowledge_base_id,
            "position": i,
            "text": text,
            "location": location,
        }
        for i, (text, location) in enumerate(chunks)
    ]
    with ctx.sessions.begin() as session:
        result = session.scalars(
            insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows
        )
        return list(result)


def _embed_and_index(
    ctx: IngestionContext,
    job_id: str,
    doc: Document,
    kb: KnowledgeBase,
    chunks: tuple[list[str], list[int]],
    clock: StageClock,
) -> BackgroundIndexer:
    """Embed batch after batch while the previous ones are being indexed.

    Before each batch goes to the retriever, and once all are in, the document must still exist:
    the gateway deletes the vectors of the chunk rows it finds, and a vector added after that
    would outlive its row.
    """
    texts, ids = chunks
    # Small batches keep the last add, the one nothing overlaps, short; the indexer merges
    # batches that arrive while an add is in flight, so a slow retriever still gets few adds.
    batch = ctx.settings.embedding.batch_size
    indexer = BackgroundIndexer(
        ctx.retriever, kb.id, kb.embedding_model, kb.embedding_dim, min_add=min(batch, MAX_ADD)
    )
    with indexer:
        for start in range(0, len(texts), batch):
            part = texts[start : start + batch]
            vectors = ctx.embedder.embed(part)
            if not _document_exists(ctx, doc.id):
                raise DocumentDeletedError(ids)
            indexer.put(
                [
                    ChunkIn(chunk_id=cid, document_id=doc.id, text=text, vector=vector)
                    for cid, text, vector in zip(
                        ids[start : start + batch], part, vectors, strict=True
                    )
                ]
            )
            done = min(1.0, (start + batch) / len(texts))
            stage = JobStage.EMBEDDING if done < 1 else JobStage.INDEXING
            _progress(ctx, job_id, stage, 0.15 + 0.8 * done)
        clock.lap("embed")
    clock.lap("index-wait")  # the last add, which nothing was left to overlap
    if not _document_exists(ctx, doc.id):
        raise DocumentDeletedError(ids)
    return indexer


def _run(
    ctx: IngestionContext, job_id: str, doc: Document, kb: KnowledgeBase, clock: StageClock
) -> int:
    require_same_embedding(
        EmbeddingSpace(f"knowledge base '{kb.name}'", kb.embedding_model, kb.embedding_dim),
        EmbeddingSpace.of(ctx.embedder, "this worker"),
    )
    _progress(ctx, job_id, JobStage.PARSING, 0.02)
    kind = KIND_BY_CONTENT_TYPE.get(doc.content_type, "txt")
    pages = _page_progress(ctx, job_id)
    sections = load_sections(Path(doc.storage_path), kind, ctx.settings.parsing, pages)
    clock.lap("parse")
    _progress(ctx, job_id, JobStage.CHUNKING, 0.1)
    chunking = ctx.settings.chunking
    located = chunk_sections(sections, chunking.size, chunking.overlap)
    if not located:
        raise DocumentParseError(f"{doc.filename}: no text could be extracted")
    texts = [text for text, _location in located]
    clock.lap("chunk")
    _clear_chunks(ctx, doc)
    ids = _store_chunks(ctx, doc, located)
    clock.lap("store")
    indexer = _embed_and_index(ctx, job_id, doc, kb, (texts, ids), clock)
    clock.note = f"{indexer.adds} adds, {indexer.busy_s:.2f} s in the retriever beside embedding"
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
    if job.stage in jobs.FINISHED_STAGES:
        # A message redelivered after the start-up reconciliation already queued it again.
        logger.info("job %s: already %s; not run again", job_id, job.stage)
        return
    clock = StageClock()
    try:
        count = _run(ctx, job_id, doc, kb, clock)
    except DocumentDeletedError as gone:
        logger.info("job %s: %s; stopped", job_id, DELETED)
        _take_back(ctx, kb.id, gone.chunk_ids)
        _fail(ctx, job_id, DELETED, "not_found")
        return
    except ZhikuError as exc:
        _fail(ctx, job_id, exc.message, exc.error_type)
        return
    except Exception as exc:
        if not _document_exists(ctx, doc.id):  # e.g. its chunk rows refused for want of it
            logger.info("job %s: %s (%s); stopped", job_id, DELETED, exc)
            _fail(ctx, job_id, DELETED, "not_found")
            return
        logger.exception("job %s: unexpected failure", job_id)
        _fail(ctx, job_id, f"internal error while ingesting: {exc}", "internal_error")
        return
    with ctx.sessions.begin() as session:
        jobs.finish_job(session, job_id, doc.id, count)
    clock.lap("finish")
    logger.info("job %s: %s indexed as %d chunks in %s", job_id, doc.filename, count, clock)
