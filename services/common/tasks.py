"""Celery wiring shared by the gateway (which enqueues by name) and the workers."""

from __future__ import annotations

from celery import Celery

from services.common import fs_transport
from services.common.settings import Settings

INGEST_TASK = "zhiku.ingest_document"
GENERATE_TASK = "zhiku.generate"


def ingest_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.ingest"


def llm_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.llm"


def create_celery(settings: Settings, name: str = "zhiku") -> Celery:
    """A Celery app on Redis when configured, else on kombu's filesystem transport in data_dir."""
    settings.ensure_dirs()
    options: dict[str, object]
    if settings.redis_url:
        broker, options = settings.redis_url, {"visibility_timeout": 3600}
    else:
        folder = str(settings.broker_dir.resolve())
        broker = f"{fs_transport.ALIAS}://"
        options = {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "control_folder": f"{folder}/control",
            "polling_interval": 0.05,
        }
    app = Celery(name, broker=broker)
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
        broker_transport_options=options,
    )
    return app
