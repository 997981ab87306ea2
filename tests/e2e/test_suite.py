"""Upload, search and chat through the real gateway, with every process running."""

from __future__ import annotations

import json

import httpx
import pytest

from services.common.answers import NOT_FOUND_EN, NOT_FOUND_ZH
from services.common.schemas import (
    ChatResponse,
    DocumentsPublic,
    ErrorPublic,
    JobPublic,
    KnowledgeBasePublic,
    SearchResponse,
    SourcesEvent,
    UploadAccepted,
)
from services.common.script import to_script_of
from tests.e2e.conftest import DATA, RunningSuite, top_hit, upload_and_wait, wait_jobs

pytestmark = pytest.mark.e2e

KB = "e2e-manuals"
# What every answered chat reports of its time, in ms (ChatResponse.timings).
TIMED_STEPS = {
    "retrieval_ms",
    "queue_ms",
    "prompt_eval_ms",
    "generation_ms",
    "checks_ms",
    "total_ms",
}


@pytest.fixture(scope="module")
def filled_kb(running_suite: RunningSuite) -> dict[str, JobPublic]:
    """The knowledge base after one upload of two good documents and several bad files."""
    client = running_suite.client
    created = client.post("/api/v1/knowledge-bases", json={"name": KB, "description": "e2e"})
    assert created.status_code == 201, created.text
    assert KnowledgeBasePublic.model_validate(created.json()).embedding_dim > 0
    files = [
        ("files", ("zh_manual.md", (DATA / "zh_manual.md").read_bytes(), "text/markdown")),
        ("files", ("en_report.txt", (DATA / "en_report.txt").read_bytes(), "text/plain")),
        ("files", ("corrupt.pdf", (DATA / "corrupt.pdf").read_bytes(), "application/pdf")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("binary.txt", (DATA / "binary.txt").read_bytes(), "text/plain")),
        ("files", ("tool.exe", b"MZ\x90\x00" * 64, "application/octet-stream")),
        ("files", ("huge.txt", b"a" * (3 * 2**20), "text/plain")),
    ]
    accepted, jobs = upload_and_wait(client, KB, files, timeout_s=180)
    rejected = {r.filename: r.error_type for r in accepted.rejected}
    assert rejected == {
        "empty.txt": "empty_input",
        "binary.txt": "unsupported_file_type",
        "tool.exe": "unsupported_file_type",
        "huge.txt": "payload_too_large",
    }
    return jobs


def test_good_files_are_indexed_and_the_corrupt_one_fails_with_a_reason(
    filled_kb: dict[str, JobPublic],
) -> None:
    assert filled_kb["zh_manual.md"].stage == "done"
    assert filled_kb["en_report.txt"].stage == "done"
    broken = filled_kb["corrupt.pdf"]
    assert broken.stage == "failed"
    assert broken.error_type == "document_parse_error"
    assert broken.error and "PDF" in broken.error


def test_duplicate_upload_is_reported_not_reingested(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    body = (DATA / "zh_manual.md").read_bytes()
    response = running_suite.client.post(
        f"/api/v1/knowledge-bases/{KB}/documents",
        files=[("files", ("copy.md", body, "text/markdown"))],
    )
    accepted = UploadAccepted.model_validate(response.json())
    assert accepted.jobs == []
    assert [d.filename for d in accepted.duplicates] == ["zh_manual.md"]


@pytest.mark.parametrize(
    ("query", "document", "fact"),
    [
        ("天工X7 的 PP 棉滤芯多久更换一次？", "zh_manual.md", "180 天"),
        ("天工X7 的售后服务热线是多少？", "zh_manual.md", "400-820-7788"),
        (
            "How large is the primary mirror of the Borealis Telescope?",
            "en_report.txt",
            "3.2 metres",
        ),
        ("How many clear nights were recorded in 2024?", "en_report.txt", "214 clear nights"),
    ],
)
def test_search_ranks_the_answering_chunk_first(
    running_suite: RunningSuite,
    filled_kb: dict[str, JobPublic],
    query: str,
    document: str,
    fact: str,
) -> None:
    top = top_hit(running_suite.client, KB, query, top_k=5)
    assert top.document_name == document
    assert fact in top.text


def test_chat_answers_with_a_citation_to_the_chunk(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    question = "天工X7 的 PP 棉滤芯多久更换一次？"
    response = running_suite.client.post(
        "/api/v1/chat",
        json={"knowledge_base": KB, "messages": [{"role": "user", "content": question}]},
    )
    assert response.status_code == 200, response.text
    chat = ChatResponse.model_validate(response.json())
    assert "180" in chat.answer
    assert chat.grounded
    assert chat.citations, chat.answer
    cited = {c.document_name for c in chat.citations}
    assert "zh_manual.md" in cited
    assert any("180 天" in c.quote for c in chat.citations if c.document_name == "zh_manual.md")
    assert set(chat.timings) >= TIMED_STEPS, chat.timings
    assert chat.timings["total_ms"] >= chat.timings["retrieval_ms"] > 0


def test_a_traditional_question_gets_a_traditional_answer(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    question = "天工X7 的 PP 棉濾芯多久更換一次？"
    response = running_suite.client.post(
        "/api/v1/chat",
        json={"knowledge_base": KB, "messages": [{"role": "user", "content": question}]},
    )
    assert response.status_code == 200, response.text
    chat = ChatResponse.model_validate(response.json())
    assert "180" in chat.answer and chat.grounded
    # Already in Traditional characters: converting it again changes nothing.
    assert to_script_of(question, chat.answer) == chat.answer
    # The quotes stay as the (Simplified) manual writes them.
    assert any("180 天" in c.quote for c in chat.citations if c.document_name == "zh_manual.md")


def _read_sse(response: httpx.Response) -> list[tuple[str, str]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, line.split(":", 1)[1].strip()))
    return events


def test_streamed_chat_sends_tokens_then_citations(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    body = {
        "knowledge_base": KB,
        "stream": True,
        "messages": [{"role": "user", "content": "When was Aurora Ridge Observatory founded?"}],
    }
    with running_suite.client.stream("POST", "/api/v1/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _read_sse(response)
    names = [name for name, _ in events]
    assert names.count("token") >= 2
    assert names[-1] == "end"
    # The passages come first, before generation: a reader sees them while the model reads.
    assert names[0] == "sources" and names.index("sources") < names.index("token")
    sources = SourcesEvent.model_validate_json(events[0][1]).sources
    assert [s.index for s in sources] == list(range(1, len(sources) + 1))
    assert any(s.document_name == "en_report.txt" and "Aurora Ridge" in s.quote for s in sources)
    final = ChatResponse.model_validate(json.loads(events[-1][1]))
    assert set(final.timings) >= TIMED_STEPS, final.timings
    streamed = "".join(json.loads(data)["text"] for name, data in events if name == "token")
    assert streamed == final.answer
    assert "1987" in final.answer
    assert any(c.document_name == "en_report.txt" for c in final.citations)


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("火星上的第一座咖啡馆叫什么名字？", NOT_FOUND_ZH),
        ("What is the name of the first café on Mars?", NOT_FOUND_EN),
    ],
)
def test_chat_says_when_the_documents_do_not_answer(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic], question: str, reply: str
) -> None:
    response = running_suite.client.post(
        "/api/v1/chat",
        json={"knowledge_base": KB, "messages": [{"role": "user", "content": question}]},
    )
    chat = ChatResponse.model_validate(response.json())
    assert reply in chat.answer
    assert not chat.grounded
    assert chat.citations == []
    body = {
        "knowledge_base": KB,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    with running_suite.client.stream("POST", "/api/v1/chat", json=body) as streamed:
        events = _read_sse(streamed)
    assert events[0] == ("sources", '{"sources":[]}')
    assert events[-1][0] == "end"


def test_unknown_knowledge_base_is_a_404_with_error_type(running_suite: RunningSuite) -> None:
    client = running_suite.client
    for response in (
        client.post("/api/v1/search", json={"knowledge_base": "nope", "query": "x", "top_k": 3}),
        client.get("/api/v1/knowledge-bases/nope/documents"),
        client.post(
            "/api/v1/knowledge-bases/nope/documents",
            files=[("files", ("a.txt", b"hi", "text/plain"))],
        ),
        client.post(
            "/api/v1/chat",
            json={"knowledge_base": "nope", "messages": [{"role": "user", "content": "x"}]},
        ),
    ):
        assert response.status_code == 404, response.text
        assert ErrorPublic.model_validate(response.json()).error_type == "not_found"


def test_invalid_requests_get_422_not_500(running_suite: RunningSuite) -> None:
    client = running_suite.client
    for response in (
        client.post("/api/v1/search", json={"knowledge_base": KB, "query": "", "top_k": 3}),
        client.post(
            "/api/v1/search", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.post("/api/v1/knowledge-bases", json={"name": "bad name/with slash"}),
        client.post("/api/v1/chat", json={"knowledge_base": KB, "messages": []}),
    ):
        assert response.status_code == 422, response.text
        assert ErrorPublic.model_validate(response.json()).error_type == "validation_error"
    dup = client.post("/api/v1/knowledge-bases", json={"name": KB})
    assert dup.status_code == 409
    assert dup.json()["error_type"] == "conflict"


def test_openai_client_works_unchanged(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{running_suite.gateway_url}/v1", api_key="unused", timeout=300)
    assert f"zhiku:{KB}" in [m.id for m in client.models.list().data]
    completion = client.chat.completions.create(
        model=f"zhiku:{KB}", messages=[{"role": "user", "content": "天工X7 的整机保修期是多久？"}]
    )
    assert "三年" in (completion.choices[0].message.content or "")
    pieces = client.chat.completions.create(
        model=f"zhiku:{KB}",
        messages=[{"role": "user", "content": "At what altitude is the observatory?"}],
        stream=True,
    )
    chunks = list(pieces)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "2,840" in text or "2840" in text
    # zhiku's extension: the first chunk names the passages, before any content.
    sources = (chunks[0].model_extra or {}).get("zhiku_sources")
    assert sources and any(s["document_name"] == "en_report.txt" for s in sources)
    assert not chunks[0].choices[0].delta.content


def test_deleting_a_document_removes_its_chunks(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    body = (DATA / "sample.html").read_bytes()
    upload = client.post(
        f"/api/v1/knowledge-bases/{KB}/documents",
        files=[("files", ("tea.html", body, "text/html"))],
    )
    job = wait_jobs(client, [UploadAccepted.model_validate(upload.json()).jobs[0].id])
    doc_id = job[0].document_id
    query = {"knowledge_base": KB, "query": "雾隐白毫的萎凋需要多长时间？", "top_k": 3}
    assert (
        SearchResponse.model_validate(client.post("/api/v1/search", json=query).json())
        .hits[0]
        .document_id
        == doc_id
    )
    assert client.delete(f"/api/v1/knowledge-bases/{KB}/documents/{doc_id}").status_code == 204
    hits = SearchResponse.model_validate(client.post("/api/v1/search", json=query).json()).hits
    assert all(h.document_id != doc_id for h in hits)
    docs = DocumentsPublic.model_validate(
        client.get(f"/api/v1/knowledge-bases/{KB}/documents").json()
    )
    assert doc_id not in [d.id for d in docs.data]


def test_a_follow_up_is_rewritten_before_retrieval(
    running_suite: RunningSuite, filled_kb: dict[str, JobPublic]
) -> None:
    messages = [
        {"role": "user", "content": "天工X7 的整机保修期是多久？"},
        {"role": "assistant", "content": "天工X7 整机保修期为三年 [1]。"},
        {"role": "user", "content": "那它的额定功率呢？"},
    ]
    response = running_suite.client.post(
        "/api/v1/chat", json={"knowledge_base": KB, "messages": messages}
    )
    chat = ChatResponse.model_validate(response.json())
    assert chat.query != "那它的额定功率呢？"
    assert "功率" in chat.query
    assert "72" in chat.answer
    assert chat.check.sentences and chat.check.unknown_markers == []
