"""The MCP endpoint: the protocol's streamable HTTP transport at /mcp, behind the API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from services.common.errors import ZhikuError
from services.common.http_errors import error_response
from services.common.mcp_tools import build_mcp_server
from services.gateway.auth import authenticate
from services.gateway.mcp.service import PRINCIPAL_KEY, tools_for

MCP_PATH = "/mcp"


def create_session_manager() -> StreamableHTTPSessionManager:
    """Stateless, JSON answers: every POST stands alone, so any gateway process can take it.

    Host and Origin are checked by the gateway's own middleware, as for every route.
    """
    server = build_mcp_server(tools_for)
    server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server.session_manager


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    """The MCP sessions for one run of the app (a manager runs only once, so one per start)."""
    manager = create_session_manager()
    async with manager.run():
        app.state.mcp_sessions = manager
        yield


class McpEndpoint:
    """Checks the bearer key like every API route, then hands the request to the MCP server."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            principal = await authenticate(request, request.app.state.zhiku)
        except ZhikuError as exc:
            response = error_response(exc.status_code, exc.message, exc.error_type)
            await response(scope, receive, send)
            return
        # A state of its own per request: the tools read the caller from it.
        scope = {**scope, "state": {**scope.get("state", {}), PRINCIPAL_KEY: principal}}
        manager: StreamableHTTPSessionManager = request.app.state.mcp_sessions
        await manager.handle_request(scope, receive, send)


def route() -> Route:
    return Route(MCP_PATH, endpoint=McpEndpoint(), methods=["GET", "POST", "DELETE"])
