"""MCP over streamable HTTP (/mcp) and stdio (`zhiku mcp`): the official client against the real
gateway, retriever, PostgreSQL and Redis; the same chunks as the REST API, the same key scopes.

The llm worker is played by the test (as in test_chat_cancel): it takes the queued generation
from Redis and publishes the answer into its stream, so `ask` runs the real chat pipeline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import CallToolResult

from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.schemas import ChatResponse, ChunkPublic, KnowledgeBasesPublic, SearchResponse
from services.common.tasks import llm_queue
from tests.integration.gateway_stack import Stack

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
QUESTION = "How many days of paid leave do employees get?"


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


def _rest_search(stack: Stack, key: str, kb: str, query: str, top_k: int) -> SearchResponse:
    response = httpx.post(
        f"{stack.gateway}/api/v1/search",
        json={"knowledge_base": kb, "query": query, "top_k": top_k},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return SearchResponse.model_validate(response.json())


async def _session_checks(client: Client, stack: Stack) -> dict[str, Any]:
    """What every face must do for the alpha-scoped key; returns what it found."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {"list_knowledge_bases", "search", "ask", "get_chunk"}
    for tool in tools.values():  # described in English and Chinese
        assert tool.description and any("\u4e00" <= ch <= "\u9fff" for ch in tool.description)
    listed = KnowledgeBasesPublic.model_validate(
        _structured(await client.call_tool("list_knowledge_bases", {}))
    )
    search = SearchResponse.model_validate(
        _structured(
            await client.call_tool(
                "search", {"knowledge_base": stack.alpha, "query": QUESTION, "top_k": 3}
            )
        )
    )
    chunk = ChunkPublic.model_validate(
        _structured(
            await client.call_tool(
                "get_chunk", {"knowledge_base": stack.alpha, "chunk_id": search.hits[0].chunk_id}
            )
        )
    )
    hidden = await client.call_tool(
        "search", {"knowledge_base": stack.beta, "query": "launch code"}
    )
    hidden_chunk = await client.call_tool(
        "get_chunk", {"knowledge_base": stack.beta, "chunk_id": 1}
    )
    bad = await client.call_tool("search", {"knowledge_base": stack.alpha, "query": ""})
    return {
        "kbs": [kb.name for kb in listed.data],
        "search": search,
        "chunk": chunk,
        "errors": [_error_text(hidden), _error_text(hidden_chunk), _error_text(bad)],
    }


def _assert_same_as_rest(found: dict[str, Any], stack: Stack) -> None:
    assert found["kbs"] == [stack.alpha]  # never beta, nor other tests' knowledge bases
    rest = _rest_search(stack, stack.alpha_key, stack.alpha, QUESTION, 3)
    mcp_hits = [(h.chunk_id, h.document_name, h.text, h.score) for h in found["search"].hits]
    assert mcp_hits == [(h.chunk_id, h.document_name, h.text, h.score) for h in rest.hits]
    assert "15 days" in rest.hits[0].text and rest.hits[0].document_name == "hr.md"
    assert found["chunk"].text == rest.hits[0].text
    hidden, hidden_chunk, bad = found["errors"]
    assert "not_found" in hidden and stack.beta in hidden  # as if beta did not exist
    assert "not_found" in hidden_chunk
    assert "query" in bad  # the argument check names the field


def test_http_lists_searches_and_keeps_to_the_key_scope(stack: Stack) -> None:
    async def run() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {stack.alpha_key}"}
        async with create_mcp_http_client(headers=headers) as http:
            transport = streamable_http_client(f"{stack.gateway}/mcp", http_client=http)
            async with Client(transport) as client:
                return await _session_checks(client, stack)

    _assert_same_as_rest(asyncio.run(run()), stack)


def test_http_without_a_valid_key_is_refused_before_mcp(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        response = httpx.post(f"{stack.gateway}/mcp", json=body, headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.json()["error_type"] == "unauthorized"


def test_stdio_command_answers_through_the_gateway_with_its_key(stack: Stack) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ZHIKU_API_KEY": stack.alpha_key,
        "ZHIKU_GATEWAY_URL": stack.gateway,
    }
    code = "from services.cli.main import app; app()"
    params = StdioServerParameters(command=sys.executable, args=["-c", code, "mcp"], env=env)

    async def run() -> dict[str, Any]:
        async with Client(params) as client:
            return await _session_checks(client, stack)

    _assert_same_as_rest(asyncio.run(run()), stack)


def _play_llm_worker(stack: Stack, answer: str) -> GenerationRequest:
    """Take the queued generation from Redis and stream ``answer`` into it, as a worker would."""
    client = redis.Redis.from_url(str(stack.settings.redis_url))
    popped = client.brpop([llm_queue(stack.settings)], timeout=60)
    assert popped is not None, "no generation was queued"
    message = json.loads(popped[1])
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    request = GenerationRequest.model_validate(args[0])
    streams = stack.app.state.zhiku.streams
    streams.publish(request.stream_id, StreamEvent(kind="token", text=answer))
    streams.publish(request.stream_id, StreamEvent(kind="end", usage={"completion_tokens": 9}))
    return request


def test_ask_answers_with_citations_through_the_chat_pipeline(stack: Stack) -> None:
    stack.app.state.zhiku.backend.heartbeats.publish("llm", {"backend": "cpu"})  # a worker is up
    taken: list[GenerationRequest] = []
    worker = threading.Thread(
        target=lambda: taken.append(
            _play_llm_worker(stack, "Employees get 15 days of paid leave per year [1].")
        )
    )
    worker.start()

    async def run() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {stack.alpha_key}"}
        async with create_mcp_http_client(headers=headers) as http:
            transport = streamable_http_client(f"{stack.gateway}/mcp", http_client=http)
            async with Client(transport) as client:
                args = {"knowledge_base": stack.alpha, "question": QUESTION}
                return _structured(await client.call_tool("ask", args))

    reply = ChatResponse.model_validate(asyncio.run(run()))
    worker.join(60)
    assert taken and taken[0].question == QUESTION
    assert any("15 days" in p.text for p in taken[0].passages)  # retrieved from alpha
    assert reply.grounded and "15 days" in reply.answer
    assert reply.citations and reply.citations[0].document_name == "hr.md"
