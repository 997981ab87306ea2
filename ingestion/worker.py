"""The ingestion Celery worker: ``celery -A ingestion.worker worker -Q zhiku.ingest``."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from ingestion.context import build_context
from ingestion.pipeline import IngestionContext, ingest_job
from ingestion.rebuild import CHECK_EVERY_S, REBUILD_TASK, rebuild_flagged, start_rebuild_watch
from ingestion.reconcile import reconcile, start_requeuing, wait_for_retriever
from ingestion.time_limits import job_time_limit
from services.common.backend import create_backend
from services.common.heartbeat import start_beating
from services.common.jobs import enqueue_ingest
from services.common.lazy import Lazy
from services.common.logging import configure_logging, request_id
from services.common.settings import Settings
from services.common.tasks import INGEST_TASK, create_celery, ingest_queue

logger = logging.getLogger(__name__)

settings = Settings()
configure_logging(settings.log_level)
backend = create_backend(settings)
app = create_celery(backend, "zhiku-ingestion")

_context: Lazy[IngestionContext] = Lazy(lambda: build_context(settings))


def get_context() -> IngestionContext:
    """Database, embedder and retriever client, built once per worker process."""
    return _context.get()


def enqueue_job(job_id: str) -> None:
    """Put an ingestion job (back) on this deployment's queue."""
    enqueue_ingest(app, job_id)


@worker_ready.connect
def _load_at_start(**_kwargs: object) -> None:
    ctx = get_context()
    start_beating(backend.heartbeats, "ingestion", {"embedder": ctx.embedder.name})
    start_requeuing(ctx.sessions, settings.ingest_requeue_after_s, enqueue_job)
    start_rebuild_watch(ctx.retriever, _queue_rebuild)
    # Before the first task: finish what a stopped worker left and make the indexes agree.
    if not wait_for_retriever(ctx):
        logger.error("retriever not ready: start-up reconciliation skipped")
        return
    try:
        report = reconcile(ctx, enqueue_job, backend.heartbeats)
    except Exception:  # the worker is still useful without it; the log says what to look at
        logger.exception("start-up reconciliation failed")
        return
    logger.info(
        "start-up reconciliation: %d jobs queued again, %d failed, %d chunks embedded again, "
        "%d rows and %d vectors removed",
        len(report.requeued),
        len(report.failed),
        report.reembedded,
        report.removed_rows,
        report.removed_vectors,
    )


# The soft limit is job_time_limit's, not Celery's soft_time_limit: Celery enforces limits only
# in prefork children (zhiku runs --pool solo), and two soft limits would race in prefork.
@app.task(name=INGEST_TASK, time_limit=settings.ingest_time_limit_s)
def ingest_document(job_id: str) -> None:
    """Thin task: the pipeline does the work and records the outcome on the job."""
    token = request_id.set(f"job:{job_id[:8]}")
    try:
        with job_time_limit(settings.ingest_soft_time_limit_s):
            ingest_job(get_context(), job_id)
    finally:
        request_id.reset(token)


def _queue_rebuild() -> None:
    # Expires with the next check: the watch queues again then if the flag is still up.
    app.send_task(REBUILD_TASK, queue=ingest_queue(settings), expires=CHECK_EVERY_S)


@app.task(name=REBUILD_TASK)
def rebuild_indexes() -> None:
    """Rebuild from the database the indexes the retriever moved aside (queued by the watch)."""
    rebuild_flagged(get_context())
