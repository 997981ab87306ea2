"""`make run` with no configuration: SQLite, the embedded queue, the same task code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.common.schemas import ChatResponse, JobPublic, SearchResponse, UploadAccepted
from tests.e2e.conftest import RunningSuite

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"


def test_upload_search_and_chat_without_redis_or_postgres(embedded_suite: RunningSuite) -> None:
    client = embedded_suite.client
    checks = client.get("/readyz").json()["checks"]
    assert checks["broker"] == "ok"
    assert checks["llm"].startswith("ok: 1 worker(s), cpu (0 GPU layers)")
    assert client.post("/api/v1/knowledge-bases", json={"name": "laptop"}).status_code == 201
    files = [
        ("files", ("manual.docx", (DATA / "sample.docx").read_bytes(), "application/octet-stream"))
    ]
    accepted = UploadAccepted.model_validate(
        client.post("/api/v1/knowledge-bases/laptop/documents", files=files).json()
    )
    job_id = accepted.jobs[0].id
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = JobPublic.model_validate(client.get(f"/api/v1/jobs/{job_id}").json())
        if job.stage in ("done", "failed"):
            break
        time.sleep(0.3)
    assert job.stage == "done", job.error
    question = "首次使用天工X7 之前，需要连续放水多长时间？"
    search = SearchResponse.model_validate(
        client.post(
            "/api/v1/search", json={"knowledge_base": "laptop", "query": question, "top_k": 3}
        ).json()
    )
    assert "十分钟" in search.hits[0].text
    chat = ChatResponse.model_validate(
        client.post(
            "/api/v1/chat",
            json={"knowledge_base": "laptop", "messages": [{"role": "user", "content": question}]},
        ).json()
    )
    assert "十分钟" in chat.answer
    assert chat.citations and chat.citations[0].document_name == "manual.docx"
