"""Every change of a job's stage or a document's status, for the gateway and the ingestion worker.

The stages and statuses are the wire vocabulary of :mod:`services.common.schemas`; only this
module writes them to the database. Functions take the caller's session and leave the commit to
it, except where a queue refusal must be recorded at once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.models import Document, Job, utcnow
from services.common.schemas import DocumentStatus, JobStage
from services.common.tasks import INGEST_TASK

__all__ = [
    "ACTIVE_STAGES",
    "FINISHED_STAGES",
    "DocumentStatus",
    "JobStage",
    "create_job",
    "enqueue_ingest",
    "enqueue_or_fail",
    "fail_documents_of_failed_jobs",
    "fail_job",
    "finish_job",
    "is_stale_queued",
    "mark_document",
    "requeue_job",
    "requeue_stale_jobs",
    "start_stage",
]

logger = logging.getLogger(__name__)

ACTIVE_STAGES = (JobStage.PARSING, JobStage.CHUNKING, JobStage.EMBEDDING, JobStage.INDEXING)
FINISHED_STAGES = (JobStage.DONE, JobStage.FAILED)


def mark_document(doc: Document, status: DocumentStatus, error: str | None = None) -> None:
    """Set a document's status and the reason that goes with it (none unless it failed)."""
    doc.status, doc.error = status, error


def create_job(session: Session, doc: Document) -> Job:
    """Add a new document as pending with its queued ingestion job (flushed, not committed)."""
    mark_document(doc, DocumentStatus.PENDING)
    session.add(doc)
    session.flush()
    job = Job(
        id=str(uuid.uuid4()),
        knowledge_base_id=doc.knowledge_base_id,
        document_id=doc.id,
        filename=doc.filename,
        stage=JobStage.QUEUED,
        progress=0.0,
    )
    session.add(job)
    return job


def start_stage(session: Session, job_id: str, stage: JobStage, progress: float) -> None:
    """Record that a running job reached ``stage`` with ``progress`` (0..1) done."""
    job = session.get(Job, job_id)
    if job is not None:
        job.stage, job.progress = stage, round(progress, 4)


def finish_job(session: Session, job_id: str, doc_id: int, chunk_count: int) -> None:
    """The document is ready with ``chunk_count`` chunks; its job is done."""
    session.execute(
        update(Document)
        .where(Document.id == doc_id)
        .values(status=DocumentStatus.READY, chunk_count=chunk_count, error=None)
    )
    job = session.get(Job, job_id)
    if job is not None:
        job.stage, job.progress = JobStage.DONE, 1.0
        job.error = job.error_type = None  # a note left by a resumed run


def fail_job(session: Session, job: Job, reason: str, error_type: str = "internal_error") -> None:
    """The job failed with ``reason``; so did its document, if it still has one."""
    job.stage, job.error, job.error_type = JobStage.FAILED, reason, error_type
    doc = session.get(Document, job.document_id) if job.document_id is not None else None
    if doc is not None:
        mark_document(doc, DocumentStatus.FAILED, reason)


def requeue_job(session: Session, job: Job, note: str | None = None) -> None:
    """Put a job back to queued from the start (``note`` says why); its document is pending."""
    job.stage, job.progress, job.error, job.error_type = JobStage.QUEUED, 0.0, note, None
    job.updated_at = utcnow()  # queued (again) now, also when it already was
    doc = session.get(Document, job.document_id) if job.document_id is not None else None
    if doc is not None:
        mark_document(doc, DocumentStatus.PENDING)


def is_stale_queued(job: Job, after_s: float) -> bool:
    """Whether a job has been queued for over ``after_s`` s: no worker ever got its message."""
    # SQLite hands timestamps back without their zone; they were written in UTC.
    since = job.updated_at if job.updated_at.tzinfo else job.updated_at.replace(tzinfo=UTC)
    return job.stage == JobStage.QUEUED and datetime.now(UTC) - since > timedelta(seconds=after_s)


def requeue_stale_jobs(session: Session, after_s: float) -> list[Job]:
    """Jobs queued for over ``after_s`` seconds, queued again now (the caller sends their messages).

    A job is committed as queued before its message is sent: a gateway that dies in between, or a
    queue that loses the message, would otherwise leave it queued for ever.
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=after_s)
    stale = list(
        session.scalars(select(Job).where(Job.stage == JobStage.QUEUED, Job.updated_at < cutoff))
    )
    for job in stale:
        requeue_job(session, job, job.error)  # a resumed job keeps its note
    return stale


def fail_documents_of_failed_jobs(session: Session) -> int:
    """A document still pending whose job failed (before it ran) is failed with the job's reason."""
    rows = session.execute(
        select(Document, Job)
        .join(Job, Job.document_id == Document.id)
        .where(Document.status == DocumentStatus.PENDING, Job.stage == JobStage.FAILED)
    ).all()
    for doc, job in rows:
        mark_document(doc, DocumentStatus.FAILED, job.error or "ingestion failed")
    return len(rows)


def enqueue_ingest(celery: Celery, job_id: str) -> None:
    """Put an ingestion job (back) on its queue; the broker's errors reach the caller."""
    celery.send_task(INGEST_TASK, args=[job_id])


def enqueue_or_fail(celery: Celery, session: Session, job: Job) -> None:
    """Queue a job; a queue that cannot take it fails the job (and commits) with the reason."""
    try:
        enqueue_ingest(celery, job.id)
    except Exception as exc:  # the broker's own errors vary by transport
        logger.error("could not queue job %s: %s", job.id, exc)
        fail_job(session, job, f"the job queue is unavailable: {exc}", "not_ready")
        session.commit()
