"""The MCP tools answered by the gateway's own services, as the calling key sees them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio.from_thread
from mcp.server.mcpserver import Context
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request

from services.common.errors import ZhikuError
from services.common.mcp_tools import KnowledgeTools, ToolFailure
from services.common.schemas import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    ChunkPublic,
    KnowledgeBasesPublic,
    SearchMode,
    SearchRequest,
    SearchResponse,
)
from services.gateway.auth import Principal
from services.gateway.chat import service as chat_service
from services.gateway.knowledge_bases import service as kb_service
from services.gateway.search import service as search_service
from services.gateway.state import GatewayState

# Where the endpoint leaves the authenticated caller in the request's scope state.
PRINCIPAL_KEY = "zhiku_principal"


class GatewayKnowledgeTools:
    """The REST services behind the tools: same scopes, same answers, same refusals."""

    def __init__(self, state: GatewayState, principal: Principal) -> None:
        self.state = state
        self.principal = principal

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with self.state.sessions() as session:
                yield session
        except ZhikuError as exc:
            raise ToolFailure(exc.message, exc.error_type) from exc
        except ValidationError as exc:
            raise ToolFailure(str(exc), "validation_error") from exc

    def list_knowledge_bases(self) -> KnowledgeBasesPublic:
        with self._session() as session:
            data = kb_service.list_kbs(session, self.principal)
        return KnowledgeBasesPublic(data=data, count=len(data))

    def search(
        self, knowledge_base: str, query: str, top_k: int, mode: SearchMode | None
    ) -> SearchResponse:
        with self._session() as session:
            body = SearchRequest(knowledge_base=knowledge_base, query=query, top_k=top_k, mode=mode)
            return search_service.search(self.state, session, body, self.principal)

    def ask(self, knowledge_base: str, question: str, top_k: int | None) -> ChatResponse:
        with self._session() as session:
            body = ChatRequest(
                knowledge_base=knowledge_base,
                messages=[ChatMessage(role="user", content=question)],
                top_k=top_k,
            )
            pipeline = chat_service.start(self.state, session, body, self.principal)
        # Tools run in a worker thread; the answer's stream is read on the gateway's event loop.
        reply = anyio.from_thread.run(chat_service.whole, self.state, pipeline, None, _stays)
        if reply is None:  # only a client that left gets no answer, and this one stays
            raise ToolFailure("the answer was cancelled", "upstream_error")
        return reply

    def get_chunk(self, knowledge_base: str, chunk_id: int) -> ChunkPublic:
        with self._session() as session:
            return kb_service.chunk(session, knowledge_base, chunk_id, self.principal)


async def _stays() -> bool:
    """An MCP tool call is answered whole: its caller is not watched for leaving."""
    return False


def tools_for(ctx: Context) -> KnowledgeTools:
    """The tools for the key that sent this tool call (checked by the endpoint)."""
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise ToolFailure("this server answers over HTTP only", "internal_error")
    principal = getattr(request.state, PRINCIPAL_KEY, None)
    if not isinstance(principal, Principal):
        raise ToolFailure("the request carried no checked API key", "unauthorized")
    state: GatewayState = request.app.state.zhiku
    return GatewayKnowledgeTools(state, principal)
