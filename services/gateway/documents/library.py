"""Edits around the library: rename a knowledge base, read one chunk, retry a failed job."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common import jobs
from services.common.chunks import ChunkLocation
from services.common.errors import ConflictError, NotFoundError
from services.common.jobs import JobStage
from services.common.models import Chunk, Document, Job, KnowledgeBase, chunks_with_names
from services.common.schemas import ChunkPublic, KnowledgeBaseUpdate
from services.gateway.documents.upload import enqueue_job
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def update_kb(session: Session, kb: KnowledgeBase, body: KnowledgeBaseUpdate) -> KnowledgeBase:
    """Rename or re-describe; indexes are keyed by id, so a rename moves nothing on disk."""
    if body.name is not None and body.name != kb.name:
        taken = session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.name == body.name))
        if taken is not None:
            raise ConflictError(f"knowledge base '{body.name}' already exists")
        logger.info("renaming knowledge base %s to %s", kb.name, body.name)
        kb.name = body.name
    if body.description is not None:
        kb.description = body.description
    session.commit()
    return kb


def get_chunk(session: Session, kb: KnowledgeBase, chunk_id: int) -> ChunkPublic:
    """One chunk with its document's name and its place in the document."""
    row = session.execute(
        chunks_with_names().where(Chunk.id == chunk_id, Chunk.knowledge_base_id == kb.id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"chunk {chunk_id} is not in knowledge base '{kb.name}'")
    count = session.scalar(
        select(func.count()).select_from(Chunk).where(Chunk.document_id == row.document_id)
    )
    return ChunkPublic(
        chunk_id=row.id,
        document_id=row.document_id,
        document_name=row.filename,
        position=row.position,
        location=ChunkLocation.of(row.location),
        chunk_count=count or 0,
        text=row.text,
    )


def retry_job(state: GatewayState, session: Session, job: Job) -> Job:
    """Queue a failed (or long-queued) job again; the pipeline replaces what a run left behind."""
    after = state.settings.ingest_requeue_after_s
    if job.stage != JobStage.FAILED and not jobs.is_stale_queued(job, after):
        raise ConflictError(
            f"job {job.id} is {job.stage}: only failed jobs, and jobs queued for over "
            f"{after:g} s, can be retried"
        )
    doc = session.get(Document, job.document_id) if job.document_id is not None else None
    if doc is None:
        raise NotFoundError(f"the document of job {job.id} was deleted: upload it again")
    jobs.requeue_job(session, job)
    session.commit()
    enqueue_job(state, session, job)
    logger.info("retrying job %s (%s)", job.id, job.filename)
    return job
