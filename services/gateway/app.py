"""The gateway: zhiku's only public API."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from services.common import api_keys, users
from services.common.backend import Backend, create_backend
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.logging import configure_logging, redact_url, request_id
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings
from services.common.tasks import create_celery
from services.gateway.auth import authenticate
from services.gateway.chat import routes as chat
from services.gateway.conversations import routes as conversations
from services.gateway.documents import routes as documents
from services.gateway.errors import install_error_handlers
from services.gateway.feedback import routes as feedback
from services.gateway.generation_slots import create_generation_slots
from services.gateway.health import routes as health
from services.gateway.keys import routes as keys
from services.gateway.knowledge_bases import routes as knowledge_bases
from services.gateway.limits import BodyLimitMiddleware
from services.gateway.mcp import routes as mcp
from services.gateway.openai import routes as openai_compat
from services.gateway.origins import OriginCheckMiddleware
from services.gateway.search import routes as search
from services.gateway.state import GatewayState
from services.gateway.users import routes as users_routes

logger = logging.getLogger(__name__)


def build_state(settings: Settings, backend: Backend | None = None) -> GatewayState:
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    backend = backend or create_backend(settings)
    per_minute = settings.rate_limit_per_minute
    return GatewayState(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        backend=backend,
        celery=create_celery(backend, "zhiku-gateway"),
        streams=backend.token_stream,
        retriever=RetrieverClient(settings.retriever_url, token=settings.internal_token),
        slots=create_generation_slots(backend),
        limiter=backend.limiter(per_minute) if per_minute else None,
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


def log_ready(settings: Settings, backend: Backend) -> None:
    """The start-up line: where the database and the queue are, never their passwords."""
    logger.info(
        "gateway ready: database %s, %s", redact_url(settings.sqlalchemy_url), backend.description
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway; settings come from ZHIKU_* variables unless given."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    backend = create_backend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.zhiku = build_state(settings, backend)
        _check_exposure(app.state.zhiku)
        log_ready(settings, backend)
        async with mcp.serving(app):
            yield
        app.state.zhiku.slots.close()
        app.state.zhiku.retriever.close()
        app.state.zhiku.engine.dispose()

    app = FastAPI(title="zhiku", version="0.1.0", lifespan=lifespan)
    app.middleware("http")(_request_id)
    _add_limits(app, settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(users_routes.login_router)  # logging in needs no key, of course
    # Every route but the health checks needs a key (or, with no keys, a local caller).
    routers = (knowledge_bases, documents, search, chat, openai_compat, keys, users_routes)
    for module in (*routers, conversations, feedback):
        app.include_router(module.router, dependencies=[Depends(authenticate)])
    app.router.routes.append(mcp.route())  # checks the key itself
    return app


def _add_limits(app: FastAPI, settings: Settings) -> None:
    """Inside out: body size, cross-site writes, CORS (so refusals still carry CORS headers),
    and the Host check outermost (a rebound DNS name gets nothing at all). Requests per caller
    are counted once the caller is known (services.gateway.auth)."""
    app.add_middleware(BodyLimitMiddleware, settings.max_request_mb, settings.max_upload_mb)
    app.add_middleware(OriginCheckMiddleware, settings.cors_origins)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
        )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)


def _check_exposure(state: GatewayState) -> None:
    """Say how callers are checked; refuse a network-wide bind with no keys at all."""
    settings = state.settings
    with state.sessions() as session:
        count = api_keys.active_count(session)
        user_count = users.user_count(session)
        keyless = api_keys.keyless_allowed(session, settings.keyless, settings.gateway_host)
    problem = api_keys.exposure_problem(settings.gateway_host, count + user_count)
    if problem:
        logger.error("%s", problem)
        raise RuntimeError(problem)
    hosts = ", ".join(settings.trusted_hosts)
    if not settings.allowed_hosts and not api_keys.is_loopback(settings.gateway_host):
        logger.warning(
            "serving on %s but answering only the Host names %s: set ZHIKU_ALLOWED_HOSTS to "
            "the names and addresses clients use",
            settings.gateway_host,
            hosts,
        )
    else:
        logger.info("answering Host headers: %s", hosts)
    if user_count:
        logger.info("%d web user(s): the web app asks for a login", user_count)
    if count or user_count:
        logger.info("every /api/v1 and /v1 request needs a bearer key or a login session")
    elif keyless:
        logger.warning(
            "keyless mode: callers from %s are admins without a key (%s; "
            "ZHIKU_KEYLESS=false turns this off)",
            ", ".join(settings.keyless_networks),
            api_keys.CREATE_HINT,
        )
    else:
        logger.warning(
            "no active API key and keyless mode is off: every API call answers 401; %s",
            api_keys.CREATE_HINT,
        )
