"""Crashes and outages: killed workers, a corrupt index, Redis and PostgreSQL going away.

The tests run in file order on one suite (private Redis and PostgreSQL, see faults_support) and
each leaves it healthy for the next.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from services.common.schemas import (
    ChatResponse,
    ErrorPublic,
    HealthPublic,
    JobPublic,
    SearchResponse,
    UploadAccepted,
)
from tests.e2e.conftest import wait_jobs
from tests.e2e.faults_support import FaultSuite, fault_suite

pytestmark = pytest.mark.e2e

__all__ = ["fault_suite"]  # the fixture, imported for pytest

DATA = Path(__file__).resolve().parents[1] / "data"
KB = "faults-kb"
QUESTION = "天工X7 的 PP 棉滤芯多久更换一次？"


def _upload(client: httpx.Client, files: dict[str, bytes]) -> list[str]:
    parts = [("files", (name, body, "text/plain")) for name, body in files.items()]
    response = client.post(f"/api/v1/knowledge-bases/{KB}/documents", files=parts)
    assert response.status_code == 202, response.text
    return [job.id for job in UploadAccepted.model_validate(response.json()).jobs]


def _kb_id(faults: FaultSuite) -> int:
    rows = faults.postgres.query("SELECT id FROM knowledge_bases WHERE name = %s", KB)
    return int(str(rows[0][0]))


def _db_chunk_ids(faults: FaultSuite) -> set[int]:
    rows = faults.postgres.query(
        "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
        "WHERE c.knowledge_base_id = %s AND d.status = 'ready'",
        _kb_id(faults),
    )
    return {int(str(r[0])) for r in rows}


def _index_ids(faults: FaultSuite) -> set[int]:
    url = f"{faults.retriever_url()}/internal/indexes/{_kb_id(faults)}/ids"
    token = faults.env.get("ZHIKU_INTERNAL_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"}
    return set(httpx.get(url, headers=headers, timeout=30).json()["ids"])


def _chat(faults: FaultSuite) -> httpx.Response:
    body = {
        "knowledge_base": KB,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 24,
        "top_k": 2,
    }
    return faults.client.post("/api/v1/chat", json=body, timeout=180)


@pytest.fixture(scope="module")
def faults(fault_suite: FaultSuite) -> FaultSuite:
    """The suite with one knowledge base holding the two sample documents."""
    created = fault_suite.client.post("/api/v1/knowledge-bases", json={"name": KB})
    assert created.status_code == 201, created.text
    files = {n: (DATA / n).read_bytes() for n in ("zh_manual.md", "en_report.txt")}
    jobs = wait_jobs(fault_suite.client, _upload(fault_suite.client, files))
    assert [j.stage for j in jobs] == ["done", "done"]
    return fault_suite


def _stream_until_first_token_then_kill(faults: FaultSuite) -> list[tuple[str, str]]:
    body = {
        "knowledge_base": KB,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
        "max_tokens": 400,
        "top_k": 2,
    }
    events: list[tuple[str, str]] = []
    name = "message"
    with faults.client.stream("POST", "/api/v1/chat", json=body, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, line.split(":", 1)[1].strip()))
                if name == "token" and sum(1 for n, _ in events if n == "token") == 1:
                    faults.kill("llm_worker")
    return events


def test_a_killed_llm_worker_ends_the_answer_with_not_ready_then_recovers(
    faults: FaultSuite,
) -> None:
    events = _stream_until_first_token_then_kill(faults)
    names = [name for name, _ in events]
    assert names[:2] == ["sources", "token"]  # the passages first, then the answer
    assert names[-1] == "error", names
    error = ErrorPublic.model_validate(json.loads(events[-1][1]))
    assert error.error_type == "not_ready"
    assert "llm worker" in error.error

    refused = _chat(faults)
    assert refused.status_code == 503
    assert ErrorPublic.model_validate(refused.json()).error == (
        "no llm worker is running; start one (or wait for it to come back) and retry"
    )
    ready = HealthPublic.model_validate(faults.client.get("/readyz").json())
    assert ready.checks["llm"].startswith("unavailable")

    faults.restart("llm_worker")
    faults.wait_ready()
    answered = _chat(faults)
    assert answered.status_code == 200, answered.text
    assert ChatResponse.model_validate(answered.json()).answer


def _long_document() -> bytes:
    lines = [
        f"Logbook entry {n}: the survey team measured station {n % 37} at {n * 7 % 113} metres "
        f"and noted wind from bearing {n * 13 % 360} degrees during shift {n % 5}."
        for n in range(400)
    ]
    return "\n\n".join(lines).encode()


def test_a_killed_ingestion_worker_resumes_its_job_and_the_index_agrees(
    faults: FaultSuite,
) -> None:
    [job_id] = _upload(faults.client, {"logbook.txt": _long_document()})
    deadline = time.monotonic() + 120
    stage = "queued"
    while stage in ("queued", "parsing") and time.monotonic() < deadline:
        stage = JobPublic.model_validate(faults.client.get(f"/api/v1/jobs/{job_id}").json()).stage
        time.sleep(0.1)
    assert stage in ("chunking", "embedding", "indexing"), stage
    faults.kill("ingestion")
    faults.restart("ingestion")

    [job] = wait_jobs(faults.client, [job_id])
    assert job.stage == "done", job
    assert job.error is None
    assert "jobs queued again" in faults.suite.log("ingestion")
    assert _index_ids(faults) == _db_chunk_ids(faults)


def _wait_index_matches(faults: FaultSuite, expected: set[int], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _index_ids(faults) == expected:
                return
        except (httpx.HTTPError, KeyError):
            pass  # the retriever is still starting
        time.sleep(1)
    assert _index_ids(faults) == expected


def test_vectors_whose_rows_vanished_are_deleted_at_worker_start(faults: FaultSuite) -> None:
    kb_id = _kb_id(faults)
    [[orphan_doc]] = faults.postgres.query(
        "SELECT id FROM documents WHERE knowledge_base_id = %s AND filename = 'logbook.txt'", kb_id
    )
    faults.kill("ingestion")
    faults.postgres.query("DELETE FROM documents WHERE id = %s", orphan_doc)
    remaining = _db_chunk_ids(faults)
    assert _index_ids(faults) > remaining
    faults.restart("ingestion")
    _wait_index_matches(faults, remaining)


def test_a_corrupt_index_is_rebuilt_from_the_chunk_rows(faults: FaultSuite) -> None:
    kb_id = _kb_id(faults)
    expected = _db_chunk_ids(faults)
    faults.kill("ingestion")
    faults.kill("retriever")
    index = faults.suite.data_dir / "indexes" / str(kb_id)
    (index / "vectors.faiss").write_bytes(b"this is not a FAISS index")
    faults.restart("retriever")
    faults.restart("ingestion")

    _wait_index_matches(faults, expected)
    assert list(index.parent.glob(f"{kb_id}.corrupt-*"))
    assert "INDEX CORRUPT" in faults.suite.log("retriever")
    faults.wait_ready()
    found = faults.client.post(
        "/api/v1/search", json={"knowledge_base": KB, "query": QUESTION, "top_k": 3}
    )
    hits = SearchResponse.model_validate(found.json()).hits
    assert any("180 天" in hit.text for hit in hits)


def _assert_not_ready(response: httpx.Response) -> ErrorPublic:
    assert response.status_code == 503, response.text
    error = ErrorPublic.model_validate(response.json())
    assert error.error_type == "not_ready"
    return error


def test_a_redis_outage_answers_503_and_the_suite_recovers(faults: FaultSuite) -> None:
    faults.redis.stop()
    try:
        ready = faults.client.get("/readyz")
        assert ready.status_code == 503
        assert HealthPublic.model_validate(ready.json()).checks["broker"].startswith("unavailable")
        assert "Redis" in _assert_not_ready(_chat(faults)).error
        # Search needs neither the queue nor the token streams.
        found = faults.client.post("/api/v1/search", json={"knowledge_base": KB, "query": "滤芯"})
        assert found.status_code == 200
        # An upload cannot be queued: its job fails at once with the reason, nothing waits.
        [job_id] = _upload(faults.client, {"during-outage.txt": b"Redis is down."})
        job = JobPublic.model_validate(faults.client.get(f"/api/v1/jobs/{job_id}").json())
        assert (job.stage, job.error_type) == ("failed", "not_ready")
        assert job.error and "queue" in job.error
    finally:
        faults.redis.start()
    faults.wait_ready()
    assert _chat(faults).status_code == 200
    jobs = wait_jobs(faults.client, _upload(faults.client, {"after-redis.txt": b"Redis is back."}))
    assert jobs[0].stage == "done"


def test_a_postgres_outage_answers_503_and_the_suite_recovers(faults: FaultSuite) -> None:
    faults.postgres.stop()
    try:
        ready = faults.client.get("/readyz")
        assert ready.status_code == 503
        checks = HealthPublic.model_validate(ready.json()).checks
        assert checks["database"].startswith("unavailable")
        assert "database" in _assert_not_ready(faults.client.get("/api/v1/knowledge-bases")).error
        _assert_not_ready(
            faults.client.post("/api/v1/search", json={"knowledge_base": KB, "query": "滤芯"})
        )
        _assert_not_ready(_chat(faults))
    finally:
        faults.postgres.start()
    faults.wait_ready()
    assert faults.client.get("/api/v1/knowledge-bases").status_code == 200
    back = {"after-pg.txt": b"PostgreSQL is back."}
    jobs = wait_jobs(faults.client, _upload(faults.client, back))
    assert jobs[0].stage == "done"
