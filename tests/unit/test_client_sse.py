"""SSE parsing and the streamed chat of GatewayClient, over an in-memory HTTP transport."""

from __future__ import annotations

import json

import httpx
import pytest

from services.client import ChatOptions, GatewayClient, GatewayError, parse_sse
from services.common.schemas import ChatResponse, SourcesEvent

END = {
    "answer": "知库支持中文和英文文档[1]。",
    "citations": [
        {
            "index": 1,
            "chunk_id": 7,
            "document_id": 3,
            "document_name": "intro.md",
            "quote": "知库支持中文和英文文档",
            "score": 0.91,
        }
    ],
    "grounded": True,
    "usage": {"prompt_tokens": 120, "completion_tokens": 12},
}


def sse(*events: tuple[str, object], sep: str = "\r\n") -> bytes:
    """Encode events the way sse-starlette does (CRLF lines, a ping comment first)."""
    out = [f": ping - 2026-01-01{sep}{sep}"]
    for name, data in events:
        out.append(f"event: {name}{sep}data: {json.dumps(data, ensure_ascii=False)}{sep}{sep}")
    return "".join(out).encode()


def streaming_client(body: bytes, status: int = 200) -> tuple[GatewayClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers={"content-type": "text/event-stream"})

    return GatewayClient("http://gw.test", transport=httpx.MockTransport(handler)), seen


def test_parse_sse_joins_data_lines_and_skips_comments() -> None:
    lines = [": comment", "event: token", "data: line one", "data:line two", "", "data: x", ""]
    events = list(parse_sse(lines))
    assert [(e.event, e.data) for e in events] == [
        ("token", "line one\nline two"),
        ("message", "x"),
    ]


def test_parse_sse_yields_a_last_event_without_trailing_blank_line() -> None:
    events = list(parse_sse(["event: end", 'data: {"a": 1}']))
    assert [(e.event, json.loads(e.data)) for e in events] == [("end", {"a": 1})]


@pytest.mark.parametrize("sep", ["\r\n", "\n"])
def test_chat_stream_yields_tokens_then_the_final_response(sep: str) -> None:
    body = sse(("token", {"text": "知库"}), ("token", {"text": "支持"}), ("end", END), sep=sep)
    client, seen = streaming_client(body)
    items = list(
        client.chat_stream(
            "手册", [{"role": "user", "content": "支持什么？"}], ChatOptions(top_k=3)
        )
    )
    assert items[:2] == ["知库", "支持"]
    assert isinstance(items[2], ChatResponse)
    assert items[2].citations[0].document_name == "intro.md"
    assert items[2].grounded is True
    sent = json.loads(seen[0].content)
    assert sent == {
        "knowledge_base": "手册",
        "stream": True,
        "top_k": 3,
        "messages": [{"role": "user", "content": "支持什么？"}],
    }
    assert seen[0].url.path == "/api/v1/chat"


def test_chat_stream_yields_the_sources_first_then_tokens_and_timings() -> None:
    source = {**END["citations"][0], "quote": "知库支持中文和英文文档。"}  # type: ignore[index]
    end = {**END, "timings": {"retrieval_ms": 85.5, "total_ms": 1900.0}}
    body = sse(("sources", {"sources": [source]}), ("token", {"text": "知库"}), ("end", end))
    client, _ = streaming_client(body)
    first, token, final = client.chat_stream("kb", [{"role": "user", "content": "q"}])
    assert isinstance(first, SourcesEvent)
    assert [(s.index, s.chunk_id, s.document_name) for s in first.sources] == [(1, 7, "intro.md")]
    assert first.sources[0].quote == "知库支持中文和英文文档。"
    assert token == "知库"
    assert isinstance(final, ChatResponse)
    assert final.timings == {"retrieval_ms": 85.5, "total_ms": 1900.0}


def test_chat_stream_error_event_raises_with_the_type_and_status() -> None:
    body = sse(
        ("token", {"text": "部分"}),
        ("error", {"error": "no answer in 300 s", "error_type": "generation_timeout"}),
    )
    client, _ = streaming_client(body)
    stream = client.chat_stream("kb", [{"role": "user", "content": "q"}])
    assert next(stream) == "部分"
    with pytest.raises(GatewayError) as info:
        next(stream)
    assert (info.value.status_code, info.value.error_type) == (504, "generation_timeout")
    assert info.value.error == "no answer in 300 s"


def test_chat_stream_cut_before_the_end_event_is_an_upstream_error() -> None:
    client, _ = streaming_client(sse(("token", {"text": "a"})))
    with pytest.raises(GatewayError) as info:
        list(client.chat_stream("kb", [{"role": "user", "content": "q"}]))
    assert info.value.error_type == "upstream_error"


def test_chat_stream_http_error_before_streaming_uses_the_error_body() -> None:
    body = json.dumps({"error": "knowledge base 'x' not found", "error_type": "not_found"})
    client, _ = streaming_client(body.encode(), status=404)
    with pytest.raises(GatewayError) as info:
        list(client.chat_stream("x", [{"role": "user", "content": "q"}]))
    assert (info.value.status_code, info.value.error_type) == (404, "not_found")
    assert "not found" in info.value.error
