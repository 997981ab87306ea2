"""Bring jobs, chunk rows and the retriever's indexes back into agreement after a crash.

Runs when an ingestion worker starts (and on demand: ``python -m ingestion.reconcile``). The
database is the source of truth: a job left half-way by a dead worker is queued again once (and
failed with its reason the second time), a job queued long ago whose message never arrived is
sent again (also every ``ingest_requeue_after_s`` while the worker runs), chunk rows of ready
documents missing from the index are embedded again and indexed, vectors without a row are
deleted, and the chunks of failed documents are removed from both sides.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ingestion.context import build_context
from ingestion.pipeline import IngestionContext
from services.common import heartbeat, jobs
from services.common.backend import create_backend
from services.common.chunks import ChunkIn
from services.common.embedding import EmbeddingSpace, require_same_embedding
from services.common.errors import EmbeddingMismatchError
from services.common.heartbeat import Heartbeats
from services.common.jobs import DocumentStatus, enqueue_ingest
from services.common.logging import configure_logging
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.settings import Settings
from services.common.tasks import create_celery

logger = logging.getLogger(__name__)

RESUMED_NOTE = "resumed after the ingestion worker stopped during this job"
GAVE_UP = "the ingestion worker stopped twice while processing this document"
# With other live workers, a job is only theirs while they keep updating it.
STALE_AFTER = timedelta(minutes=10)
REEMBED_BATCH = 256


@dataclass
class ReconcileReport:
    """What one reconciliation changed."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reembedded: int = 0
    removed_rows: int = 0
    removed_vectors: int = 0


def other_workers_alive(heartbeats: Heartbeats, wait_s: float = heartbeat.INTERVAL_S + 2) -> bool:
    """Whether another ingestion worker is beating (a dead one's last beat does not count)."""
    first = {b["worker"]: b["at"] for b in heartbeats.alive("ingestion")}
    first.pop(heartbeat.worker_name(), None)
    if not first:
        return False
    # A beat outlives its worker by up to TTL_S: only a worker that beats again is alive.
    time.sleep(wait_s)
    later = {b["worker"]: b["at"] for b in heartbeats.alive("ingestion")}
    return any(later.get(worker, at) != at for worker, at in first.items())


def resume_stuck_jobs(
    ctx: IngestionContext, enqueue: Callable[[str], None], others_alive: bool
) -> ReconcileReport:
    """Queue again each job a dead worker left half-way; fail it if that already happened once."""
    report = ReconcileReport()
    cutoff = datetime.now(UTC) - STALE_AFTER
    with ctx.sessions.begin() as session:
        stuck = session.scalars(select(Job).where(Job.stage.in_(jobs.ACTIVE_STAGES))).all()
        for job in stuck:
            if others_alive and _aware(job.updated_at) > cutoff:
                continue  # another live worker may be running it right now
            if job.error == RESUMED_NOTE:
                jobs.fail_job(session, job, GAVE_UP)
                report.failed.append(job.id)
            else:
                jobs.requeue_job(session, job, RESUMED_NOTE)
                report.requeued.append(job.id)
        # A document whose only job failed before it ran (queue down) is failed, not pending.
        jobs.fail_documents_of_failed_jobs(session)
    for job_id in report.requeued:
        enqueue(job_id)
    if report.requeued or report.failed:
        logger.warning(
            "jobs left by a stopped worker: %d queued again, %d failed",
            len(report.requeued),
            len(report.failed),
        )
    return report


def requeue_unpicked_jobs(
    sessions: sessionmaker[Session], after_s: float, enqueue: Callable[[str], None]
) -> list[str]:
    """Send again the message of each job queued for over ``after_s`` s; answers their ids."""
    with sessions.begin() as session:
        job_ids = [job.id for job in jobs.requeue_stale_jobs(session, after_s)]
    sent = []
    for job_id in job_ids:
        try:
            enqueue(job_id)
        except Exception as exc:  # the broker's own errors vary; the next round tries again
            logger.error("could not queue job %s again: %s", job_id, exc)
            continue
        sent.append(job_id)
    if job_ids:
        logger.warning("jobs queued for over %g s: %d sent again", after_s, len(sent))
    return sent


def start_requeuing(
    sessions: sessionmaker[Session], after_s: float, enqueue: Callable[[str], None]
) -> threading.Event:
    """Check for lost messages every ``after_s`` s in a daemon thread; set the answer to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(after_s):
            try:
                requeue_unpicked_jobs(sessions, after_s, enqueue)
            except Exception:  # a database hiccup must not end the checks for good
                logger.exception("checking for jobs whose message was lost failed")

    threading.Thread(target=loop, name="requeue-lost-jobs", daemon=True).start()
    return stop


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def agree_indexes(ctx: IngestionContext) -> ReconcileReport:
    """Make every knowledge base's index hold exactly the chunks of its ready documents."""
    report = ReconcileReport()
    with ctx.sessions() as session:
        kbs = list(session.scalars(select(KnowledgeBase)))
    for kb in kbs:
        _agree_one(ctx, kb, report)
    if report.reembedded or report.removed_rows or report.removed_vectors:
        logger.warning(
            "indexes reconciled: %d chunks embedded again, %d rows and %d vectors removed",
            report.reembedded,
            report.removed_rows,
            report.removed_vectors,
        )
    return report


def _agree_one(ctx: IngestionContext, kb: KnowledgeBase, report: ReconcileReport) -> None:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Chunk.id, Document.status)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.knowledge_base_id == kb.id)
        ).all()
    indexed = set(ctx.retriever.ids(kb.id))
    known = {chunk_id for chunk_id, _ in rows}
    failed = {chunk_id for chunk_id, status in rows if status == DocumentStatus.FAILED}
    ready = {chunk_id for chunk_id, status in rows if status == DocumentStatus.READY}
    stale = sorted((indexed - known) | (indexed & failed))
    if stale:
        ctx.retriever.delete(kb.id, stale)
        report.removed_vectors += len(stale)
    if failed:
        with ctx.sessions.begin() as session:
            session.execute(delete(Chunk).where(Chunk.id.in_(sorted(failed))))
        report.removed_rows += len(failed)
    missing = sorted(ready - indexed)
    if missing:
        report.reembedded += _reembed(ctx, kb, missing)


def _reembed(ctx: IngestionContext, kb: KnowledgeBase, chunk_ids: list[int]) -> int:
    """Embed stored chunk texts again and index them; answers how many were indexed."""
    try:
        require_same_embedding(
            EmbeddingSpace(f"knowledge base {kb.name}", kb.embedding_model, kb.embedding_dim),
            EmbeddingSpace.of(ctx.embedder, "this worker"),
        )
    except EmbeddingMismatchError as exc:
        logger.error("%d vectors missing but not rebuilt: %s", len(chunk_ids), exc.message)
        return 0
    logger.warning("knowledge base %s: embedding %d chunks again", kb.name, len(chunk_ids))
    for start in range(0, len(chunk_ids), REEMBED_BATCH):
        with ctx.sessions() as session:
            rows = session.execute(
                select(Chunk.id, Chunk.document_id, Chunk.text)
                .where(Chunk.id.in_(chunk_ids[start : start + REEMBED_BATCH]))
                .order_by(Chunk.id)
            ).all()
        vectors = ctx.embedder.embed([text for _, _, text in rows])
        items = [
            ChunkIn(chunk_id=cid, document_id=doc_id, text=text, vector=vector)
            for (cid, doc_id, text), vector in zip(rows, vectors, strict=True)
        ]
        ctx.retriever.add(kb.id, kb.embedding_model, kb.embedding_dim, items)
    return len(chunk_ids)


def reconcile(
    ctx: IngestionContext, enqueue: Callable[[str], None], heartbeats: Heartbeats
) -> ReconcileReport:
    """Resume or fail stuck jobs, then make the indexes agree with the chunk rows."""
    jobs = resume_stuck_jobs(ctx, enqueue, other_workers_alive(heartbeats))
    lost = requeue_unpicked_jobs(ctx.sessions, ctx.settings.ingest_requeue_after_s, enqueue)
    indexes = agree_indexes(ctx)
    indexes.requeued, indexes.failed = jobs.requeued + lost, jobs.failed
    return indexes


def wait_for_retriever(ctx: IngestionContext, timeout_s: float = 180.0) -> bool:
    """Wait until the retriever answers /readyz; False after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ctx.retriever.ready():
            return True
        time.sleep(1.0)
    return False


def main() -> None:
    """Run one reconciliation with this deployment's settings and exit."""
    settings = Settings()
    configure_logging(settings.log_level)
    backend = create_backend(settings)
    celery = create_celery(backend, "zhiku-reconcile")
    ctx = build_context(settings)
    report = reconcile(ctx, partial(enqueue_ingest, celery), backend.heartbeats)
    logger.info("reconciliation done: %s", report)


if __name__ == "__main__":
    main()
