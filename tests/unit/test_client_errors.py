"""GatewayClient: error mapping, unreachable gateway, auth header and request shapes."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from services.client import GatewayClient, GatewayError
from services.common.schemas import JobStage

NOW = "2026-01-02T03:04:05Z"
JOB = {
    "id": "job-1",
    "document_id": 5,
    "knowledge_base": "手册",
    "filename": "a.pdf",
    "stage": "embedding",
    "progress": 0.6,
    "error": None,
    "error_type": None,
    "created_at": NOW,
    "updated_at": NOW,
}
KB = {
    "id": 1,
    "name": "手册",
    "description": "",
    "embedding_model": "use-v3",
    "embedding_dim": 512,
    "document_count": 0,
    "created_at": NOW,
}

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, api_key: str | None = None) -> GatewayClient:
    return GatewayClient("http://gw.test/", api_key=api_key, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(404, "not_found"), (409, "conflict"), (415, "unsupported_file_type"), (503, "not_ready")],
)
def test_error_body_becomes_gateway_error(status: int, error_type: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": f"said {status}", "error_type": error_type})

    with pytest.raises(GatewayError) as info:
        client_for(handler).get_knowledge_base("手册")
    err = info.value
    assert (err.status_code, err.error_type, err.error) == (status, error_type, f"said {status}")
    assert str(err) == f"{error_type}: said {status}"


def test_error_without_json_body_keeps_status_and_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="Bad Gateway from proxy")

    with pytest.raises(GatewayError) as info:
        client_for(handler).list_knowledge_bases()
    assert (info.value.status_code, info.value.error_type) == (502, "http_error")
    assert info.value.error == "Bad Gateway from proxy"


def test_closed_port_is_unreachable() -> None:
    with (
        GatewayClient("http://127.0.0.1:9", timeout=5) as client,
        pytest.raises(GatewayError) as info,
    ):
        client.list_knowledge_bases()
    assert (info.value.status_code, info.value.error_type) == (0, "unreachable")
    assert info.value.error.startswith("gateway unreachable at URL: http://127.0.0.1:9")


def test_connect_error_in_stream_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(GatewayError) as info:
        list(client_for(handler).chat_stream("kb", [{"role": "user", "content": "q"}]))
    assert info.value.error_type == "unreachable"


def test_read_timeout_is_a_timeout_not_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(GatewayError) as info:
        client_for(handler).chat("kb", [{"role": "user", "content": "q"}])
    assert (info.value.status_code, info.value.error_type) == (0, "timeout")


def test_api_key_is_sent_as_bearer_and_kb_name_is_quoted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=KB)

    kb = client_for(handler, api_key="s3cret").get_knowledge_base("手册")
    assert kb.embedding_dim == 512
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].url.raw_path == b"/api/v1/knowledge-bases/%E6%89%8B%E5%86%8C"


def test_no_api_key_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [KB], "count": 1})

    assert client_for(handler).list_knowledge_bases().count == 1
    assert "authorization" not in seen[0].headers


def test_ready_returns_health_on_503() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"status": "unavailable", "checks": {"database": "ok", "llm": "loading model"}}
        return httpx.Response(503, json=body)

    health = client_for(handler).ready()
    assert health.status == "unavailable"
    assert health.checks["llm"] == "loading model"


def test_upload_sends_multipart_parts_named_files() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            202,
            json={
                "jobs": [JOB],
                "rejected": [
                    {
                        "filename": "x.exe",
                        "error": "not supported",
                        "error_type": "unsupported_file_type",
                    }
                ],
            },
        )

    accepted = client_for(handler).upload("手册", [("a.pdf", b"%PDF-1.4"), ("x.exe", b"MZ")])
    assert accepted.jobs[0].stage is JobStage.EMBEDDING
    assert accepted.rejected[0].error_type == "unsupported_file_type"
    assert accepted.duplicates == []
    body = seen[0].read()
    assert seen[0].headers["content-type"].startswith("multipart/form-data")
    assert body.count(b'name="files"') == 2
    assert b'filename="a.pdf"' in body and b"Content-Type: application/pdf" in body


def test_list_jobs_and_follow_jobs_until_finished() -> None:
    stages = iter(["parsing", "indexing", "done"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jobs"):
            return httpx.Response(200, json={"data": [JOB], "count": 1})
        return httpx.Response(200, json={**JOB, "stage": next(stages)})

    client = client_for(handler)
    assert [j.id for j in client.list_jobs("手册")] == ["job-1"]
    seen = [job.stage for job in client.follow_jobs(["job-1"], interval_s=0)]
    assert seen == [JobStage.PARSING, JobStage.INDEXING, JobStage.DONE]


def test_chat_without_stream_posts_the_request() -> None:
    answer = {"answer": "不知道", "citations": [], "grounded": False}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["stream"] is False and "top_k" not in body
        return httpx.Response(200, json=answer)

    reply = client_for(handler).chat("kb", [{"role": "user", "content": "q"}])
    assert reply.grounded is False and reply.usage == {}


def test_unexpected_body_is_a_bad_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"unexpected": True})

    with pytest.raises(GatewayError) as info:
        client_for(handler).get_job("job-1")
    assert info.value.error_type == "bad_response"
