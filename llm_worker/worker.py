"""Celery entrypoint of the llm worker: ``celery -A llm_worker.worker worker --pool solo -c 1``.

This module is the entrypoint, so it builds Settings and the Celery app at import; the task
logic lives in :mod:`llm_worker.service`. Without ``-Q`` the worker consumes this deployment's
llm queue (``<queue_prefix>.llm``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, worker_process_init
from pydantic import ValidationError

from llm_worker.engines import get_generator
from llm_worker.service import publish_error, run_generation
from services.common.backend import create_backend
from services.common.errors import ValidationFailedError
from services.common.generation_schemas import GenerationRequest
from services.common.heartbeat import start_beating
from services.common.logging import configure_logging, request_id
from services.common.settings import Settings
from services.common.streams import TokenStream
from services.common.tasks import GENERATE_TASK, create_celery, llm_queue

logger = logging.getLogger(__name__)

settings = Settings()
backend = create_backend(settings)
celery_app = create_celery(backend, "zhiku-llm")
celery_app.conf.task_default_queue = llm_queue(settings)


def token_stream() -> TokenStream:
    """The process-wide token stream (one Redis pool or engine per worker process)."""
    return backend.token_stream


@setup_logging.connect
def _configure_logging(**_kwargs: Any) -> None:
    """Our format (with the stream id on every line) instead of Celery's root logger setup."""
    configure_logging(settings.log_level)


@worker_process_init.connect
def _load_model_at_start(**_kwargs: Any) -> None:
    """Load the model before the first request; failures are reported per request instead."""
    try:
        generator = get_generator(settings)
    except Exception as exc:
        # Keep the worker up: each request then reports why the model is missing.
        logger.error("llm model not loaded at start: %s", exc)
        return
    start_beating(backend.heartbeats, "llm", generator.backend_info)


# acks_late is off here: a request whose worker died is better answered by the gateway's
# timeout than replayed into a stream the reader may already have given up on.
@celery_app.task(name=GENERATE_TASK, acks_late=False)
def generate(payload: dict[str, Any]) -> None:
    """Answer one GenerationRequest (as JSON) into its token stream."""
    stream = token_stream()
    try:
        req = GenerationRequest.model_validate(payload)
    except ValidationError as exc:
        stream_id = str(payload.get("stream_id", "")) if isinstance(payload, dict) else ""
        logger.error("invalid generation request for stream %r: %s", stream_id, exc)
        if stream_id:
            publish_error(stream, stream_id, ValidationFailedError(f"bad request: {exc}"))
        return
    token = request_id.set(req.stream_id)
    try:
        generator = get_generator(settings)
    except Exception as exc:
        logger.error("stream %s: model not available: %s", req.stream_id, exc)
        publish_error(stream, req.stream_id, exc)
        return
    else:
        run_generation(req, stream, generator)
    finally:
        request_id.reset(token)
