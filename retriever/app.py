"""The retriever's FastAPI app: ``uvicorn retriever.app:create_app --factory --port 8001``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from retriever import keyword_index
from retriever.backend import create_chunk_index
from retriever.routes import internal, router
from retriever.state import RetrieverState
from services.common.embedding import create_embedder
from services.common.errors import ZhikuError
from services.common.http_errors import install_error_handlers
from services.common.logging import configure_logging
from services.common.settings import Settings

logger = logging.getLogger(__name__)


def _load_models(state: RetrieverState) -> None:
    """Load the embedder (and the tokenizer dictionaries) once; readiness flips when done."""
    try:
        keyword_index.warm_up()
        embedder = create_embedder(state.settings.embedding)
        embedder.embed(["warm up"])  # some backends read their weights on the first call
    except Exception as exc:  # any failure must surface in /readyz instead of killing the thread
        logger.exception("embedding model failed to load")
        state.load_error = f"{type(exc).__name__}: {exc}"
        return
    # Found before ready, not at the first search: /readyz names what must be rebuilt.
    try:
        state.store.check_all()
    except ZhikuError as exc:  # an index that cannot even be moved aside fails its own requests
        logger.error("indexes not checked at start: %s", exc.message)
    state.embedder = embedder
    logger.info("embedding model %s (dim %d) loaded", embedder.name, embedder.dim)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: RetrieverState = app.state.retriever
    # Loading runs beside the server so /healthz answers at once and /readyz can say 503.
    loader = threading.Thread(target=_load_models, args=(state,), name="embedder-load", daemon=True)
    loader.start()
    yield
    state.store.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the retriever app; the embedder loads in the background once the app starts."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="zhiku retriever", lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.retriever = RetrieverState(settings=settings, store=create_chunk_index(settings))
    install_error_handlers(app, "retriever")
    app.include_router(router)
    app.include_router(internal)
    if settings.internal_token is None:
        logger.warning(
            "ZHIKU_INTERNAL_TOKEN is unset: any caller that reaches this port may read and "
            "change every index (make run and docker compose always set it)"
        )
    return app
