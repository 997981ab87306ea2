"""Saved conversations, feedback, chunk lookup, rename and job retry through the real gateway."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from services.common.conversation_schemas import (
    ConversationDetail,
    ConversationPublic,
    ConversationsPublic,
    FeedbackPublic,
)
from services.common.schemas import (
    ChatResponse,
    ChunkPublic,
    JobPublic,
    KnowledgeBasePublic,
)
from tests.e2e.conftest import DATA, RunningSuite, upload_and_wait, wait_jobs

pytestmark = pytest.mark.e2e

KB = "e2e-conversations"
QUESTION = "天工X7 的 PP 棉滤芯多久更换一次？"


@pytest.fixture(scope="module")
def jobs(running_suite: RunningSuite) -> dict[str, JobPublic]:
    """A knowledge base with the Chinese manual indexed and one corrupt PDF failed."""
    client = running_suite.client
    assert client.post("/api/v1/knowledge-bases", json={"name": KB}).status_code == 201
    files = [
        ("files", ("zh_manual.md", (DATA / "zh_manual.md").read_bytes(), "text/markdown")),
        ("files", ("corrupt.pdf", (DATA / "corrupt.pdf").read_bytes(), "application/pdf")),
    ]
    return upload_and_wait(client, KB, files)[1]


def _chat(client: httpx.Client, conversation_id: int, question: str) -> ChatResponse:
    body = {
        "knowledge_base": KB,
        "conversation_id": conversation_id,
        "messages": [{"role": "user", "content": question}],
        "mode": "hybrid",
        "temperature": 0.0,
    }
    response = client.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    return ChatResponse.model_validate(response.json())


def test_a_conversation_keeps_both_turns_with_citations(
    running_suite: RunningSuite, jobs: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    assert jobs["zh_manual.md"].stage == "done"
    created = client.post("/api/v1/conversations", json={"knowledge_base": KB})
    assert created.status_code == 201, created.text
    conv = ConversationPublic.model_validate(created.json())
    reply = _chat(client, conv.id, QUESTION)
    assert reply.conversation_id == conv.id and reply.message_id is not None
    assert reply.citations, reply.answer
    detail = ConversationDetail.model_validate(
        client.get(f"/api/v1/conversations/{conv.id}").json()
    )
    assert detail.title == QUESTION  # named after the first question
    assert [m.role for m in detail.messages] == ["user", "assistant"]
    answer = detail.messages[1]
    assert answer.id == reply.message_id and answer.content == reply.answer
    assert answer.citations == reply.citations and answer.query == reply.query
    chunk = client.get(f"/api/v1/knowledge-bases/{KB}/chunks/{reply.citations[0].chunk_id}")
    assert chunk.status_code == 200, chunk.text
    shown = ChunkPublic.model_validate(chunk.json())
    assert shown.document_name == "zh_manual.md" and 0 <= shown.position < shown.chunk_count
    assert reply.citations[0].quote.strip()[:10] in shown.text


def test_a_follow_up_streams_and_is_stored(
    running_suite: RunningSuite, jobs: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    conv = ConversationPublic.model_validate(
        client.post("/api/v1/conversations", json={"knowledge_base": KB, "title": "滤芯"}).json()
    )
    _chat(client, conv.id, QUESTION)
    body = {
        "knowledge_base": KB,
        "conversation_id": conv.id,
        "stream": True,
        "messages": [{"role": "user", "content": "反渗透膜呢？"}],
    }
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    end = ChatResponse.model_validate(json.loads(lines[-1].removeprefix("data:").strip()))
    assert end.conversation_id == conv.id
    detail = ConversationDetail.model_validate(
        client.get(f"/api/v1/conversations/{conv.id}").json()
    )
    assert [m.content for m in detail.messages][2] == "反渗透膜呢？"
    assert detail.messages[3].id == end.message_id and detail.title == "滤芯"
    # Only a question with history is rewritten: the saved turns reached the model.
    assert "rewrote '反渗透膜呢？'" in running_suite.log("gateway")


def test_list_rename_delete_and_errors(
    running_suite: RunningSuite, jobs: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    first = client.post("/api/v1/conversations", json={"knowledge_base": KB, "title": "一"}).json()
    second = client.post("/api/v1/conversations", json={"knowledge_base": KB, "title": "二"}).json()
    listed = ConversationsPublic.model_validate(
        client.get("/api/v1/conversations", params={"knowledge_base": KB}).json()
    )
    ids = [c.id for c in listed.data]
    assert ids.index(second["id"]) < ids.index(first["id"])  # newest first
    renamed = client.patch(f"/api/v1/conversations/{first['id']}", json={"title": "新名字"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "新名字"
    assert client.delete(f"/api/v1/conversations/{first['id']}").status_code == 204
    missing = client.get(f"/api/v1/conversations/{first['id']}")
    assert missing.status_code == 404 and missing.json()["error_type"] == "not_found"
    blank = client.patch(f"/api/v1/conversations/{second['id']}", json={"title": ""})
    assert blank.status_code == 422 and blank.json()["error_type"] == "validation_error"
    no_kb = client.get("/api/v1/conversations", params={"knowledge_base": "no-such-kb"})
    assert no_kb.status_code == 404


def test_feedback_is_stored_replaced_and_exported(
    running_suite: RunningSuite, jobs: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    conv = client.post("/api/v1/conversations", json={"knowledge_base": KB}).json()
    reply = _chat(client, conv["id"], QUESTION)
    first = client.post("/api/v1/feedback", json={"message_id": reply.message_id, "rating": -1})
    assert first.status_code == 201, first.text
    body = {"message_id": reply.message_id, "rating": 1, "comment": "准确"}
    again = FeedbackPublic.model_validate(client.post("/api/v1/feedback", json=body).json())
    assert again.id == first.json()["id"] and again.rating == 1
    assert again.question == QUESTION and again.answer == reply.answer
    assert again.knowledge_base == KB
    bad = client.post("/api/v1/feedback", json={"rating": 5})
    assert bad.status_code == 422
    lines = client.get("/api/v1/feedback/export").text.splitlines()
    exported = [FeedbackPublic.model_validate_json(line) for line in lines]
    assert any(f.id == again.id and f.comment == "准确" for f in exported)
    table = client.get("/api/v1/feedback/export", params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert any(row["id"] == str(again.id) and row["rating"] == "1" for row in rows)


def test_rename_kb_and_retry_a_failed_job(
    running_suite: RunningSuite, jobs: dict[str, JobPublic]
) -> None:
    client = running_suite.client
    failed = jobs["corrupt.pdf"]
    assert failed.stage == "failed"
    retried = client.post(f"/api/v1/jobs/{failed.id}/retry")
    assert retried.status_code == 202, retried.text
    assert JobPublic.model_validate(retried.json()).stage == "queued"
    (again,) = wait_jobs(client, [failed.id])
    assert again.stage == "failed" and again.error_type == "document_parse_error"
    done = client.post(f"/api/v1/jobs/{jobs['zh_manual.md'].id}/retry")
    assert done.status_code == 409 and done.json()["error_type"] == "conflict"
    other = f"{KB}-other"
    assert client.post("/api/v1/knowledge-bases", json={"name": other}).status_code == 201
    taken = client.patch(f"/api/v1/knowledge-bases/{KB}", json={"name": other})
    assert taken.status_code == 409 and taken.json()["error_type"] == "conflict"
    client.delete(f"/api/v1/knowledge-bases/{other}")
    renamed = client.patch(f"/api/v1/knowledge-bases/{KB}", json={"description": "改过"})
    assert KnowledgeBasePublic.model_validate(renamed.json()).description == "改过"
    moved = client.patch(f"/api/v1/knowledge-bases/{KB}", json={"name": f"{KB}-2"})
    assert moved.status_code == 200 and moved.json()["name"] == f"{KB}-2"
    client.patch(f"/api/v1/knowledge-bases/{KB}-2", json={"name": KB})
