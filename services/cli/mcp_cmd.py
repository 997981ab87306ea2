"""``zhiku mcp``: the knowledge bases as MCP tools over stdio, answered through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver import Context, MCPServer

from services.client import ChatOptions, GatewayClient, GatewayError
from services.common.mcp_tools import KnowledgeTools, ToolFailure, build_mcp_server
from services.common.schemas import (
    ChatResponse,
    ChunkPublic,
    KnowledgeBasesPublic,
    SearchMode,
    SearchResponse,
)


@contextmanager
def _refusals() -> Iterator[None]:
    """The gateway's ``{error, error_type}`` (and an unreachable gateway) as tool errors."""
    try:
        yield
    except GatewayError as exc:
        raise ToolFailure(exc.error, exc.error_type) from exc


class ClientKnowledgeTools:
    """The tools as the gateway answers the configured key: its scopes are the gateway's."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client

    def list_knowledge_bases(self) -> KnowledgeBasesPublic:
        with _refusals():
            return self.client.list_knowledge_bases()

    def search(
        self, knowledge_base: str, query: str, top_k: int, mode: SearchMode | None
    ) -> SearchResponse:
        with _refusals():
            return self.client.search(knowledge_base, query, top_k, mode)

    def ask(self, knowledge_base: str, question: str, top_k: int | None) -> ChatResponse:
        messages = [{"role": "user", "content": question}]
        with _refusals():
            return self.client.chat(knowledge_base, messages, ChatOptions(top_k=top_k))

    def get_chunk(self, knowledge_base: str, chunk_id: int) -> ChunkPublic:
        with _refusals():
            return self.client.get_chunk(knowledge_base, chunk_id)


def stdio_server(client: GatewayClient) -> MCPServer:
    """The MCP server whose every tool call goes to the gateway with ``client``'s key."""
    tools: KnowledgeTools = ClientKnowledgeTools(client)

    def tools_for(_ctx: Context) -> KnowledgeTools:
        return tools

    return build_mcp_server(tools_for)


def serve_stdio(client: GatewayClient) -> None:
    """Serve MCP on stdin/stdout until the client closes them."""
    stdio_server(client).run("stdio")
