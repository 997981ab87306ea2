"""The ``zhiku`` CLI through typer's CliRunner, with the gateway behind an in-memory transport."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from services.cli.ingest import batches, collect_files
from services.cli.main import app
from services.client import GatewayClient

NOW = "2026-01-02T03:04:05Z"
runner = CliRunner()


class GatewayStub:
    """Answers the gateway's public routes from a little in-memory state."""

    def __init__(self) -> None:
        self.kbs: dict[str, dict[str, object]] = {}
        self.jobs: dict[str, list[str]] = {}
        self.requests: list[httpx.Request] = []

    def client(self) -> GatewayClient:
        return GatewayClient("http://gw.test", transport=httpx.MockTransport(self.handle))

    def kb(self, name: str) -> dict[str, object]:
        return {
            "id": len(self.kbs) + 1,
            "name": name,
            "description": "",
            "embedding_model": "use",
            "embedding_dim": 512,
            "document_count": 0,
            "created_at": NOW,
        }

    def job(self, job_id: str, stage: str, filename: str) -> dict[str, object]:
        failed = stage == "failed"
        return {
            "id": job_id,
            "document_id": 1,
            "knowledge_base": "kb",
            "filename": filename,
            "stage": stage,
            "progress": 1.0 if stage in ("done", "failed") else 0.5,
            "error": "no text found" if failed else None,
            "error_type": "document_parse_error" if failed else None,
            "created_at": NOW,
            "updated_at": NOW,
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = request.url.path, request.method
        if path == "/api/v1/knowledge-bases" and method == "POST":
            name = json.loads(request.content)["name"]
            if name in self.kbs:
                return httpx.Response(
                    409, json={"error": f"{name} exists", "error_type": "conflict"}
                )
            self.kbs[name] = self.kb(name)
            return httpx.Response(201, json=self.kbs[name])
        if path == "/api/v1/knowledge-bases":
            return httpx.Response(
                200, json={"data": list(self.kbs.values()), "count": len(self.kbs)}
            )
        if path.startswith("/api/v1/knowledge-bases/") and path.endswith("/documents"):
            return self.upload(request)
        if path.startswith("/api/v1/knowledge-bases/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.kbs:
                return httpx.Response(404, json={"error": f"no {name}", "error_type": "not_found"})
            return (
                httpx.Response(204)
                if method == "DELETE"
                else httpx.Response(200, json=self.kbs[name])
            )
        if path.startswith("/api/v1/jobs/"):
            job_id = path.rsplit("/", 1)[1]
            stage = self.jobs[job_id].pop(0) if len(self.jobs[job_id]) > 1 else self.jobs[job_id][0]
            return httpx.Response(200, json=self.job(job_id, stage, job_id.split(":", 1)[1]))
        if path == "/api/v1/chat":
            return self.chat(request)
        return httpx.Response(404, json={"error": path, "error_type": "not_found"})

    def upload(self, request: httpx.Request) -> httpx.Response:
        names = [part.split(b'"')[0].decode() for part in request.read().split(b'filename="')[1:]]
        jobs = []
        for name in names:
            self.jobs[f"j:{name}"] = ["parsing", "embedding", "failed" if "bad" in name else "done"]
            jobs.append(self.job(f"j:{name}", "queued", name))
        return httpx.Response(202, json={"jobs": jobs, "rejected": [], "duplicates": []})

    def chat(self, request: httpx.Request) -> httpx.Response:
        final = {
            "answer": "答案[1]",
            "grounded": True,
            "citations": [
                {
                    "index": 1,
                    "chunk_id": 1,
                    "document_id": 1,
                    "document_name": "手册.md",
                    "quote": "原文[引用]内容",
                    "score": 0.9,
                }
            ],
            "timings": {"retrieval_ms": 120.0, "queue_ms": 3.0, "total_ms": 2400.0},
        }
        if not json.loads(request.content)["stream"]:
            return httpx.Response(200, json=final)
        passage = {**final["citations"][0], "quote": "知库是文档问答助手。"}  # type: ignore[index]
        body = (
            f"event: sources\ndata: {json.dumps({'sources': [passage]})}\n\n"
            + "".join(f"event: token\ndata: {json.dumps({'text': t})}\n\n" for t in ("答", "案[1]"))
            + f"event: end\ndata: {json.dumps(final)}\n\n"
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


@pytest.fixture
def gateway() -> GatewayStub:
    return GatewayStub()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "ask", "kb"):
        assert command in result.output
    kb_help = runner.invoke(app, ["kb", "--help"])
    assert all(c in kb_help.output for c in ("list", "create", "delete"))


def test_ask_requires_kb() -> None:
    result = runner.invoke(app, ["ask", "什么是知库？"])
    assert result.exit_code == 2
    assert "--kb" in result.output


def test_kb_create_list_delete(gateway: GatewayStub) -> None:
    client = gateway.client()
    assert runner.invoke(app, ["kb", "create", "手册"], obj=client).exit_code == 0
    listed = runner.invoke(app, ["kb", "list"], obj=client)
    assert listed.exit_code == 0 and "手册" in listed.output and "1 knowledge base" in listed.output
    deleted = runner.invoke(app, ["kb", "delete", "手册"], obj=client)
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    assert gateway.requests[-1].method == "DELETE"


def test_gateway_error_prints_type_and_message_and_exits_1(gateway: GatewayStub) -> None:
    client = gateway.client()
    runner.invoke(app, ["kb", "create", "dup"], obj=client)
    result = runner.invoke(app, ["kb", "create", "dup"], obj=client)
    assert result.exit_code == 1
    assert "conflict: dup exists" in result.output
    assert "Traceback" not in result.output


def test_unreachable_gateway_from_the_option() -> None:
    result = runner.invoke(app, ["--gateway", "http://127.0.0.1:9", "kb", "list"])
    assert result.exit_code == 1
    assert "unreachable: gateway unreachable at URL: http://127.0.0.1:9" in result.output


def test_ingest_creates_kb_follows_jobs_and_fails_on_a_failed_file(
    gateway: GatewayStub, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.md").write_text("# 知库\n", encoding="utf-8")
    (tmp_path / "sub" / "bad.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sub" / "image.gif").write_bytes(b"GIF89a")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--kb", "docs"], obj=gateway.client())
    assert result.exit_code == 1, result.output
    assert "docs" in gateway.kbs
    assert "image.gif (unsupported type)" in result.output
    assert "1 done" in result.output and "1 failed" in result.output
    assert "document_parse_error: no text found" in result.output


def test_ingest_all_done_exits_0(gateway: GatewayStub, tmp_path: Path) -> None:
    for name in ("a.txt", "b.html", "c.md"):
        (tmp_path / name).write_text("hello", encoding="utf-8")
    args = ["ingest", str(tmp_path), "--kb", "docs", "--batch-size", "2"]
    result = runner.invoke(app, args, obj=gateway.client())
    assert result.exit_code == 0, result.output
    assert "3 done" in result.output
    uploads = [r for r in gateway.requests if r.url.path.endswith("/documents")]
    assert len(uploads) == 2


def test_ingest_no_create_on_missing_kb(gateway: GatewayStub, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello", encoding="utf-8")
    args = ["ingest", str(tmp_path / "a.txt"), "--kb", "nope", "--no-create"]
    result = runner.invoke(app, args, obj=gateway.client())
    assert result.exit_code == 1
    assert "not_found" in result.output and "nope" not in gateway.kbs


def test_ingest_missing_path(gateway: GatewayStub, tmp_path: Path) -> None:
    args = ["ingest", str(tmp_path / "missing.pdf"), "--kb", "docs"]
    result = runner.invoke(app, args, obj=gateway.client())
    assert result.exit_code == 1 and "no such file or directory" in result.output


@pytest.mark.parametrize("stream", [True, False])
def test_ask_prints_answer_then_sources(gateway: GatewayStub, stream: bool) -> None:
    args = ["ask", "什么是知库？", "--kb", "docs"] + ([] if stream else ["--no-stream"])
    result = runner.invoke(app, args, obj=gateway.client())
    assert result.exit_code == 0, result.output
    assert result.output.index("答案[1]") < result.output.index("Sources")
    assert "[1] 手册.md: 原文[引用]内容" in result.output
    assert "timings" not in result.output


def test_ask_prints_the_passages_being_read_before_the_answer(gateway: GatewayStub) -> None:
    result = runner.invoke(app, ["ask", "什么是知库？", "--kb", "docs"], obj=gateway.client())
    assert result.exit_code == 0, result.output
    reading = result.output.index("reading 1 passages")
    assert reading < result.output.index("[1] 手册.md: 知库是文档问答助手。")
    assert result.output.index("[1] 手册.md: 知库是文档问答助手。") < result.output.index("答案[1]")


@pytest.mark.parametrize("stream", [True, False])
def test_ask_verbose_prints_the_timings(gateway: GatewayStub, stream: bool) -> None:
    args = ["ask", "什么是知库？", "--kb", "docs", "--verbose"] + (
        [] if stream else ["--no-stream"]
    )
    result = runner.invoke(app, args, obj=gateway.client())
    assert result.exit_code == 0, result.output
    assert "timings (ms): retrieval_ms 120, queue_ms 3, total_ms 2400" in result.output


def test_collect_files_and_batches(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    files = {"a.PDF": 10, "d/b.docx": 10, "d/c.htm": 10, "d/skip.exe": 1}
    for name, size in files.items():
        (tmp_path / name).write_bytes(b"x" * size)
    found, skipped = collect_files([tmp_path, tmp_path / "a.PDF"])
    assert [p.name for p in found] == ["a.PDF", "b.docx", "c.htm"]
    assert [p.name for p in skipped] == ["skip.exe"]
    assert [len(b) for b in batches(found, batch_size=10, max_bytes=25)] == [2, 1]
