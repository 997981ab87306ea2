"""Celery entrypoint of the llm worker (``celery -A llm_worker.worker worker -Q zhiku.llm``).

This module is the entrypoint, so it builds Settings and the Celery app at import; the task
logic lives in :mod:`llm_worker.service`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_process_init
from pydantic import ValidationError

from llm_worker.generator import get_generator
from llm_worker.service import create_token_stream, publish_error, run_generation
from services.common.errors import ValidationFailedError
from services.common.schemas import GenerationRequest
from services.common.settings import Settings
from services.common.streams import TokenStream
from services.common.tasks import GENERATE_TASK, create_celery

logger = logging.getLogger(__name__)

settings = Settings()
celery_app = create_celery(settings, "zhiku-llm")

_stream: TokenStream | None = None
_stream_lock = threading.Lock()


def token_stream() -> TokenStream:
    """The process-wide token stream (one Redis pool or engine per worker process)."""
    global _stream
    with _stream_lock:
        if _stream is None:
            _stream = create_token_stream(settings)
        return _stream


@worker_process_init.connect
def _load_model_at_start(**_kwargs: Any) -> None:
    """Load the model before the first request; failures are reported per request instead."""
    try:
        get_generator(settings)
    except Exception as exc:
        # Keep the worker up: each request then reports why the model is missing.
        logger.error("llm model not loaded at start: %s", exc)


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
    try:
        generator = get_generator(settings)
    except Exception as exc:
        logger.error("stream %s: model not available: %s", req.stream_id, exc)
        publish_error(stream, req.stream_id, exc)
        return
    run_generation(req, stream, generator)
