"""The {error, error_type} envelope every zhiku HTTP service answers failures with."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.errors import ZhikuError

logger = logging.getLogger(__name__)


def error_payload(error: str, error_type: str | None) -> str:
    """An error body as JSON text, for streams that already sent their headers."""
    return json.dumps(
        {"error": error, "error_type": error_type or "upstream_error"}, ensure_ascii=False
    )


def error_response(
    status_code: int, error: str, error_type: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content={"error": error, "error_type": error_type},
        headers=headers,
    )


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, service: str) -> None:
    """Our errors, validation and HTTP errors as the envelope; anything else a logged 500."""

    @app.exception_handler(ZhikuError)
    async def _zhiku(_request: Request, exc: ZhikuError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.error_type, exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _describe_validation(exc), "validation_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, str(exc.detail), error_type)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal error; see the {service} log", "internal_error")
