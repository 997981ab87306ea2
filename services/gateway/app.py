"""The gateway: zhiku's only public API."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.logging import configure_logging, request_id
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings
from services.common.streams import create_token_stream
from services.common.tasks import create_celery
from services.gateway.errors import install_error_handlers
from services.gateway.routes import chat, documents, health, knowledge_bases, openai_compat, search
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def build_state(settings: Settings) -> GatewayState:
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    return GatewayState(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        celery=create_celery(settings, "zhiku-gateway"),
        streams=create_token_stream(settings),
        retriever=RetrieverClient(settings.retriever_url),
    )


async def _request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:12]
    token = request_id.set(rid)
    try:
        response = await call_next(request)
    finally:
        request_id.reset(token)
    response.headers["x-request-id"] = rid
    return response


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway; settings come from ZHIKU_* variables unless given."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.zhiku = build_state(settings)
        mode = "Redis " + str(settings.redis_url) if settings.redis_url else "embedded queue"
        logger.info("gateway ready: database %s, %s", settings.sqlalchemy_url.split("@")[-1], mode)
        yield
        app.state.zhiku.retriever.close()
        app.state.zhiku.engine.dispose()

    app = FastAPI(title="zhiku", version="0.1.0", lifespan=lifespan)
    app.middleware("http")(_request_id)
    install_error_handlers(app)
    for module in (health, knowledge_bases, documents, search, chat, openai_compat):
        app.include_router(module.router)
    return app
