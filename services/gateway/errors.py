"""Every failure leaves the gateway as {error, error_type} with one status per type."""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from services.common.http_errors import error_response
from services.common.http_errors import install_error_handlers as install_shared_handlers

logger = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """The shared envelope; an unreachable database or Redis is a 503, an unstorable value a 422."""
    install_shared_handlers(app, "gateway")

    @app.exception_handler(DataError)  # PostgreSQL: "integer out of range"
    @app.exception_handler(OverflowError)  # SQLite's driver, before the query is sent
    async def _unrepresentable(_request: Request, exc: Exception) -> JSONResponse:
        # e.g. an id beyond the database's integer range: the input is wrong, not the server.
        logger.info("value the database cannot store: %s", getattr(exc, "orig", exc))
        return error_response(422, "a value is out of range for the database", "validation_error")

    @app.exception_handler(IntegrityError)
    async def _conflict(_request: Request, exc: IntegrityError) -> JSONResponse:
        # A safety net: services check first; a race with another request can still land here.
        logger.warning("write refused by the database: %s", exc.orig)
        return error_response(409, "the request conflicts with stored data", "conflict")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(_request: Request, exc: Exception) -> JSONResponse:
        logger.error("database unavailable: %s", getattr(exc, "orig", exc))
        return error_response(503, "the database is unavailable; retry shortly", "not_ready")

    @app.exception_handler(redis.RedisError)
    @app.exception_handler(KombuOperationalError)
    async def _broker(_request: Request, exc: Exception) -> JSONResponse:
        logger.error("Redis unavailable: %s", exc)
        return error_response(
            503, "the queue and token streams (Redis) are unavailable; retry shortly", "not_ready"
        )
