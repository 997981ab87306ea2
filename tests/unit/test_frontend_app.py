"""The Streamlit page through AppTest: unreachable gateway, loading state, and a streamed chat."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from frontend.chat import PLACEHOLDER, PLACEHOLDER_NO_KB, format_citation, wire_messages
from services.common.client import GatewayClient
from services.common.schemas import Citation

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")
NOW = "2026-01-02T03:04:05Z"
KB = {
    "id": 1,
    "name": "手册",
    "description": "",
    "embedding_model": "use",
    "embedding_dim": 512,
    "document_count": 1,
    "created_at": NOW,
}
DOC = {
    "id": 9,
    "knowledge_base": "手册",
    "filename": "指南.pdf",
    "content_type": "application/pdf",
    "size_bytes": 100,
    "sha256": "0" * 64,
    "status": "ready",
    "chunk_count": 4,
    "created_at": NOW,
}
CITATION = {
    "index": 1,
    "chunk_id": 3,
    "document_id": 9,
    "document_name": "指南.pdf",
    "quote": "支持 PDF、DOCX 与 HTML",
    "score": 0.8,
}
FINAL = {"answer": "知库支持PDF[1]。", "grounded": True, "citations": [CITATION]}


def gateway(ready: int = 200, kbs: list[dict[str, object]] | None = None) -> GatewayClient:
    """A client whose transport answers like a gateway with one knowledge base."""
    data = [KB] if kbs is None else kbs

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/readyz":
            status = "ok" if ready == 200 else "unavailable"
            return httpx.Response(ready, json={"status": status, "checks": {"llm": "loading"}})
        if path == "/api/v1/knowledge-bases":
            return httpx.Response(200, json={"data": data, "count": len(data)})
        if path.endswith("/documents"):
            return httpx.Response(200, json={"data": [DOC], "count": 1})
        if path == "/api/v1/chat":
            tokens = "".join(
                f"event: token\ndata: {json.dumps({'text': t})}\n\n"
                for t in ("知库支持", "PDF[1]。")
            )
            body = f"{tokens}event: end\ndata: {json.dumps(FINAL)}\n\n"
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(404, json={"error": path, "error_type": "not_found"})

    return GatewayClient("http://gw.test", transport=httpx.MockTransport(handler))


def run_app(client: GatewayClient | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if client is not None:
        at.session_state["client"] = client
    return at.run()


def test_unreachable_gateway_shows_how_to_start_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_GATEWAY_URL", "http://127.0.0.1:9")
    at = run_app()
    assert not at.exception
    assert at.title[0].value == "知库 Zhiku"
    assert len(at.error) == 1
    assert "http://127.0.0.1:9" in at.error[0].value and "make run" in at.error[0].value
    assert len(at.chat_input) == 0


def test_not_ready_shows_model_loading() -> None:
    at = run_app(gateway(ready=503))
    assert not at.exception
    assert any("Model loading" in info.value and "llm: loading" in info.value for info in at.info)


def test_no_knowledge_base_disables_the_chat() -> None:
    at = run_app(gateway(kbs=[]))
    assert not at.exception
    assert at.chat_input[0].placeholder == PLACEHOLDER_NO_KB
    assert at.chat_input[0].disabled


def test_sidebar_lists_kb_and_documents() -> None:
    at = run_app(gateway())
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "手册"
    assert any("指南.pdf" in md.value for md in at.sidebar.markdown)
    assert any(b.key == "delete-doc-9" for b in at.sidebar.button)
    assert at.chat_input[0].placeholder == PLACEHOLDER


def test_chat_streams_the_answer_and_lists_sources() -> None:
    at = run_app(gateway())
    at.chat_input[0].set_value("知库支持哪些格式？").run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assistant = at.chat_message[1]
    assert any("知库支持PDF[1]。" in md.value for md in assistant.markdown)
    sources = assistant.expander[0]
    assert sources.label == "引用 / Sources (1)"
    assert "[1] 指南.pdf" in sources.markdown[0].value
    history = at.session_state["history"]["手册"]
    assert [t["role"] for t in history] == ["user", "assistant"]


def test_format_citation_and_wire_messages() -> None:
    citation = Citation.model_validate(CITATION)
    assert format_citation(citation) == "**[1] 指南.pdf**\n\n> 支持 PDF、DOCX 与 HTML"
    turns = [{"role": "user", "content": str(i), "citations": []} for i in range(10)]
    sent = wire_messages(turns)
    assert len(sent) == 6 and sent[-1] == {"role": "user", "content": "9"}
