"""Celery wiring shared by the gateway (which enqueues by name) and the workers."""

from __future__ import annotations

from celery import Celery

from services.common.backend import Backend
from services.common.settings import Settings

INGEST_TASK = "zhiku.ingest_document"
GENERATE_TASK = "zhiku.generate"


def ingest_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.ingest"


def llm_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.llm"


def create_celery(backend: Backend, name: str = "zhiku") -> Celery:
    """A Celery app on the backend's broker: Redis, or kombu's filesystem transport."""
    settings = backend.settings
    settings.ensure_dirs()
    broker = backend.broker()
    app = Celery(name, broker=broker.url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_routes={
            INGEST_TASK: {"queue": ingest_queue(settings)},
            GENERATE_TASK: {"queue": llm_queue(settings)},
        },
        broker_transport_options=dict(broker.transport_options),
    )
    return app
