"""zhiku's knowledge bases as Model Context Protocol tools, whatever serves them.

One definition of the four tools (names, bilingual descriptions, arguments, results) for both
faces: the gateway's streamable HTTP endpoint answers them with its own services, and
``zhiku mcp`` (stdio) answers them through the gateway client. Each face supplies a
``KnowledgeTools`` for the caller of a tool call; its failures become tool errors that name the
``error_type``, as the REST API does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from services.common.schemas import (
    ChatResponse,
    ChunkPublic,
    KnowledgeBasesPublic,
    SearchMode,
    SearchResponse,
)

SERVER_NAME = "zhiku"
INSTRUCTIONS = (
    "zhiku (知库) answers from the user's own documents. Call list_knowledge_bases first, then "
    "search for passages or ask for a cited answer; get_chunk shows a passage in full. "
    "知库基于用户自己的文档作答：先调用 list_knowledge_bases，再用 search 检索段落或用 ask "
    "获取带引用的回答；get_chunk 返回某个段落的全文。"
)

LIST_DESCRIPTION = (
    "List the knowledge bases this API key may use, with their descriptions and document "
    "counts. 列出当前 API 密钥可以使用的知识库，包括描述和文档数量。"
)
SEARCH_DESCRIPTION = (
    "Search a knowledge base and return the best-matching passages (chunks), ranked, each with "
    "its document name, chunk id, text and score. Use it to read the sources yourself. "
    "在知识库中检索，按相关度返回最匹配的段落（文档名、段落编号、正文和得分），供你自行阅读原文。"
)
ASK_DESCRIPTION = (
    "Ask a question and get an answer grounded in a knowledge base, with numbered citations "
    "[n] to the passages it used; says so when the documents do not answer it. "
    "向知识库提问，得到基于文档的回答，并以 [n] 标注所引用的段落；文档中没有答案时会明确说明。"
)
CHUNK_DESCRIPTION = (
    "Get one passage (chunk) of a knowledge base in full, by the chunk id that search or ask "
    "returned. 按 search 或 ask 返回的段落编号，获取知识库中某个段落的全文。"
)

KnowledgeBaseArg = Annotated[
    str, Field(min_length=1, description="Knowledge base name. 知识库名称。")
]
QueryArg = Annotated[
    str, Field(min_length=1, max_length=4000, description="What to look for. 检索内容。")
]
TopKArg = Annotated[int, Field(ge=1, le=50, description="How many passages. 返回段落数。")]
ModeArg = Annotated[
    SearchMode | None,
    Field(
        description="dense (meaning), keyword (BM25) or hybrid; unset: the server's default. "
        "检索方式：dense（语义）、keyword（关键词）或 hybrid（混合）；不填则用默认值。"
    ),
]
QuestionArg = Annotated[
    str, Field(min_length=1, max_length=20000, description="The question. 问题。")
]
AskTopKArg = Annotated[
    int | None,
    Field(
        ge=1, le=50, description="Passages read; unset: the default. 参考段落数，不填则用默认值。"
    ),
]
ChunkIdArg = Annotated[int, Field(ge=1, description="The chunk id. 段落编号。")]


class KnowledgeTools(Protocol):
    """What the tools do for one caller; raise ``ToolFailure`` for an anticipated failure."""

    def list_knowledge_bases(self) -> KnowledgeBasesPublic: ...

    def search(
        self, knowledge_base: str, query: str, top_k: int, mode: SearchMode | None
    ) -> SearchResponse: ...

    def ask(self, knowledge_base: str, question: str, top_k: int | None) -> ChatResponse: ...

    def get_chunk(self, knowledge_base: str, chunk_id: int) -> ChunkPublic: ...


class ToolFailure(ToolError):
    """A refused tool call, worded like the REST API's ``{error, error_type}``."""

    def __init__(self, error: str, error_type: str) -> None:
        super().__init__(f"{error_type}: {error}")
        self.error = error
        self.error_type = error_type


ToolsFor = Callable[[Context], KnowledgeTools]


def build_mcp_server(tools_for: ToolsFor) -> MCPServer:
    """An MCP server whose four tools call ``tools_for(ctx)`` for each call's caller."""
    server: MCPServer = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool(name="list_knowledge_bases", description=LIST_DESCRIPTION)
    def list_knowledge_bases(ctx: Context) -> KnowledgeBasesPublic:
        return tools_for(ctx).list_knowledge_bases()

    @server.tool(name="search", description=SEARCH_DESCRIPTION)
    def search(
        knowledge_base: KnowledgeBaseArg,
        query: QueryArg,
        ctx: Context,
        top_k: TopKArg = 5,
        mode: ModeArg = None,
    ) -> SearchResponse:
        return tools_for(ctx).search(knowledge_base, query, top_k, mode)

    @server.tool(name="ask", description=ASK_DESCRIPTION)
    def ask(
        knowledge_base: KnowledgeBaseArg,
        question: QuestionArg,
        ctx: Context,
        top_k: AskTopKArg = None,
    ) -> ChatResponse:
        return tools_for(ctx).ask(knowledge_base, question, top_k)

    @server.tool(name="get_chunk", description=CHUNK_DESCRIPTION)
    def get_chunk(
        knowledge_base: KnowledgeBaseArg, chunk_id: ChunkIdArg, ctx: Context
    ) -> ChunkPublic:
        return tools_for(ctx).get_chunk(knowledge_base, chunk_id)

    return server
