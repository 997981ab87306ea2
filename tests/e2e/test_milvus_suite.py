"""The whole suite with the retriever on Milvus (a Milvus Lite file): upload, search, chat with
citations, per-knowledge-base isolation, delete, and a retriever restart, through the gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.schemas import ChatResponse, DocumentsPublic, SearchResponse
from services.launcher import start
from tests.e2e.conftest import DATA, RunningSuite, _start_suite, _stop_suite, upload_and_wait

pytestmark = pytest.mark.e2e

MANUALS, TEA = "milvus-manuals", "milvus-tea"
FILTER = "天工X7 的 PP 棉滤芯多久更换一次？"
TEA_QUESTION = "雾隐白毫的萎凋需要多长时间？"
TYPES = {".md": "text/markdown", ".txt": "text/plain", ".html": "text/html"}


@dataclass
class MilvusSuite:
    suite: RunningSuite
    procs: dict[str, subprocess.Popen[bytes]]
    env: dict[str, str]
    documents: dict[str, int]  # filename: document id

    def search(self, kb: str, query: str) -> SearchResponse:
        body = {"knowledge_base": kb, "query": query, "top_k": 5}
        response = self.suite.client.post("/api/v1/search", json=body)
        assert response.status_code == 200, response.text
        return SearchResponse.model_validate(response.json())

    def restart_retriever(self) -> None:
        """SIGKILL the retriever, as a crash would, and start it again on the same Milvus file."""
        old = self.procs["retriever"]
        os.killpg(old.pid, signal.SIGKILL)
        old.wait()
        assert isinstance(old.args, list)
        self.procs.update(start({"retriever": old.args}, self.env, self.suite.data_dir / "logs"))


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory, small_model: Path) -> Iterator[MilvusSuite]:
    """An embedded suite (SQLite, no Redis) whose retriever keeps every chunk in Milvus Lite;
    the manuals in one knowledge base, the tea leaflet in another."""
    data_dir = tmp_path_factory.mktemp("milvus-data")
    env = {
        "ZHIKU_RETRIEVAL__BACKEND": "milvus",
        "ZHIKU_RETRIEVAL__MILVUS_URI": str(data_dir / "milvus.db"),
    }
    suite, procs = _start_suite(data_dir, small_model, None, None, env)
    handle = MilvusSuite(suite, procs, _environ(procs["retriever"].pid), {})
    try:
        client = suite.client
        for kb, files in ((MANUALS, ("zh_manual.md", "en_report.txt")), (TEA, ("sample.html",))):
            assert client.post("/api/v1/knowledge-bases", json={"name": kb}).status_code == 201
            parts = [("files", (n, (DATA / n).read_bytes(), TYPES[Path(n).suffix])) for n in files]
            _, jobs = upload_and_wait(client, kb, parts, timeout_s=180)
            for name, job in jobs.items():
                assert job.stage == "done", job.error
                assert job.document_id is not None
                handle.documents[name] = job.document_id
        yield handle
    finally:
        _stop_suite(suite, handle.procs, "milvus")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_retriever_keeps_no_index_files(milvus: MilvusSuite) -> None:
    assert milvus.env["ZHIKU_RETRIEVAL__BACKEND"] == "milvus"
    assert (milvus.suite.data_dir / "milvus.db").exists()
    index_dir = milvus.suite.data_dir / "indexes"
    assert not index_dir.exists() or not any(index_dir.iterdir())


@pytest.mark.parametrize(
    ("query", "document", "fact"),
    [
        (FILTER, "zh_manual.md", "180 天"),
        ("How many clear nights were recorded in 2024?", "en_report.txt", "214 clear nights"),
    ],
)
def test_search_ranks_the_answering_chunk_first(
    milvus: MilvusSuite, query: str, document: str, fact: str
) -> None:
    top = milvus.search(MANUALS, query).hits[0]
    assert top.document_name == document
    assert fact in top.text


def test_chat_answers_with_a_citation_to_the_chunk(milvus: MilvusSuite) -> None:
    body = {"knowledge_base": MANUALS, "messages": [{"role": "user", "content": FILTER}]}
    response = milvus.suite.client.post("/api/v1/chat", json=body)
    assert response.status_code == 200, response.text
    chat = ChatResponse.model_validate(response.json())
    assert "180" in chat.answer
    assert any("180 天" in c.quote for c in chat.citations if c.document_name == "zh_manual.md")


def test_each_knowledge_base_searches_only_its_own_chunks(milvus: MilvusSuite) -> None:
    tea = milvus.documents["sample.html"]
    assert milvus.search(TEA, TEA_QUESTION).hits[0].document_id == tea
    manual_hits = milvus.search(MANUALS, TEA_QUESTION).hits
    assert all(h.document_name in ("zh_manual.md", "en_report.txt") for h in manual_hits)
    assert all(h.document_name == "sample.html" for h in milvus.search(TEA, FILTER).hits)


def test_a_restarted_retriever_serves_the_same_chunks(milvus: MilvusSuite) -> None:
    before = [h.chunk_id for h in milvus.search(MANUALS, FILTER).hits]
    milvus.restart_retriever()
    deadline = time.monotonic() + 180
    while milvus.suite.client.get("/readyz", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the suite was not ready after the retriever restart"
        time.sleep(0.5)
    assert [h.chunk_id for h in milvus.search(MANUALS, FILTER).hits] == before


def test_deleting_a_document_removes_its_chunks(milvus: MilvusSuite) -> None:
    client, tea = milvus.suite.client, milvus.documents["sample.html"]
    assert client.delete(f"/api/v1/knowledge-bases/{TEA}/documents/{tea}").status_code == 204
    assert all(h.document_id != tea for h in milvus.search(TEA, TEA_QUESTION).hits)
    docs = DocumentsPublic.model_validate(
        client.get(f"/api/v1/knowledge-bases/{TEA}/documents").json()
    )
    assert tea not in [d.id for d in docs.data]
