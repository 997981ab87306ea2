"""An HTTP transport answering like the gateway, for the web app's AppTest tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.client import GatewayClient

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
    "size_bytes": 2048,
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
CHUNK = {
    "chunk_id": 3,
    "document_id": 9,
    "document_name": "指南.pdf",
    "position": 1,
    "chunk_count": 4,
    "text": "知库是知识助手。\n它支持 PDF、DOCX 与 HTML 文件。",
}
HIT = {
    **{k: CHUNK[k] for k in ("chunk_id", "document_id", "document_name", "position", "text")},
    "score": 0.032,
    "dense_score": 0.71,
    "keyword_score": 3.2,
}


def job(job_id: str, stage: str, progress: float, error: str | None = None) -> dict[str, Any]:
    """A job of the knowledge base as the gateway lists it."""
    return {
        "id": job_id,
        "document_id": 9,
        "knowledge_base": "手册",
        "filename": f"{job_id}.pdf",
        "stage": stage,
        "progress": progress,
        "error": error,
        "error_type": "document_parse_error" if error else None,
        "created_at": NOW,
        "updated_at": NOW,
    }


def conversation(
    conversation_id: int, title: str, messages: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A saved conversation of the knowledge base with its messages, as the gateway returns it."""
    return {
        "id": conversation_id,
        "knowledge_base": "手册",
        "title": title,
        "message_count": len(messages or []),
        "created_at": NOW,
        "updated_at": NOW,
        "messages": list(messages or []),
    }


@dataclass
class FakeGateway:
    """Answers the public routes from a little in-memory state and records every request."""

    ready: int = 200
    auth_status: int | None = None
    kbs: list[dict[str, Any]] = field(default_factory=lambda: [dict(KB)])
    jobs: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail_after_sources: bool = False  # the chat stream ends in an error once its sources are sent
    users: dict[str, str] = field(default_factory=dict)  # web users: name -> password
    sessions: dict[str, str] = field(default_factory=dict)  # live session token -> name

    def client(self) -> GatewayClient:
        """A gateway client talking to this fake."""
        return GatewayClient("http://gw.test", transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content and method != "GET" else None
        if "multipart" in request.headers.get("content-type", ""):
            body = None
        self.requests.append((method, path, body))
        if path == "/readyz":
            status = "ok" if self.ready == 200 else "unavailable"
            checks = {"database": "ok", "llm": "ok" if self.ready == 200 else "no worker yet"}
            return httpx.Response(self.ready, json={"status": status, "checks": checks})
        if self.auth_status:
            return httpx.Response(
                self.auth_status, json={"error": "bad key", "error_type": "unauthorized"}
            )
        if path.startswith("/api/v1/auth/"):
            return self._auth_route(path, body, request)
        if self.users and self._caller(request) is None:
            return httpx.Response(401, json={"error": "log in", "error_type": "unauthorized"})
        return self._route(method, path, body, request)

    def _caller(self, request: httpx.Request) -> str | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self.sessions.get(token)

    def _auth_route(self, path: str, body: Any, request: httpx.Request) -> httpx.Response:
        wrong = httpx.Response(401, json={"error": "wrong", "error_type": "unauthorized"})
        if path.endswith("/config"):
            return httpx.Response(200, json={"login_required": bool(self.users)})
        if path.endswith("/login"):
            if self.users.get(body["username"]) != body["password"]:
                return wrong
            token = f"zs_{len(self.sessions)}"
            self.sessions[token] = body["username"]
            name = body["username"]
            login = {"token": token, "expires_at": NOW, "username": name, "admin": False}
            return httpx.Response(200, json={**login, "knowledge_bases": ["手册"]})
        name = self._caller(request)
        if name is None:
            return wrong
        if path.endswith("/logout"):
            self.sessions = {t: n for t, n in self.sessions.items() if n != name}
            return httpx.Response(204)
        me = {"name": name, "admin": False, "user": True, "knowledge_bases": ["手册"]}
        return httpx.Response(200, json=me)

    def _route(self, method: str, path: str, body: Any, request: httpx.Request) -> httpx.Response:
        if path == "/api/v1/knowledge-bases":
            return httpx.Response(200, json={"data": self.kbs, "count": len(self.kbs)})
        if path.startswith("/api/v1/knowledge-bases/"):
            return self._kb_route(method, path, body)
        if path.startswith("/api/v1/conversations"):
            return self._conversation_route(method, path, body, request)
        if path == "/api/v1/chat":
            return self._chat(body)
        if path == "/api/v1/search":
            return httpx.Response(200, json={"knowledge_base": "手册", "query": "q", "hits": [HIT]})
        if path == "/api/v1/feedback":
            return httpx.Response(
                201,
                json={
                    "id": 1,
                    "comment": "",
                    "question": "",
                    "created_at": NOW,
                    **body,
                },
            )
        if path.endswith("/retry"):
            return httpx.Response(202, json=job("j2", "queued", 0.0))
        return httpx.Response(404, json={"error": path, "error_type": "not_found"})

    def _kb_route(self, method: str, path: str, body: Any) -> httpx.Response:
        if path.endswith("/documents") and method == "POST":
            return httpx.Response(
                202, json={"jobs": [job("new", "queued", 0.0)], "rejected": [], "duplicates": []}
            )
        if path.endswith("/documents"):
            return httpx.Response(200, json={"data": [DOC], "count": 1})
        if path.endswith("/jobs"):
            return httpx.Response(200, json={"data": self.jobs, "count": len(self.jobs)})
        if "/chunks/" in path:
            return httpx.Response(200, json=CHUNK)
        if method == "PATCH":
            self.kbs[0] = {**self.kbs[0], **body}
            return httpx.Response(200, json=self.kbs[0])
        if method == "DELETE":
            self.kbs.clear()
            return httpx.Response(204)
        return httpx.Response(200, json=self.kbs[0])

    def _conversation_route(
        self, method: str, path: str, body: Any, request: httpx.Request
    ) -> httpx.Response:
        tail = path.removeprefix("/api/v1/conversations").strip("/")
        if not tail and method == "POST":
            new_id = len(self.conversations) + 1
            conv = conversation(new_id, body["title"] or "New chat")
            self.conversations[new_id] = conv
            return httpx.Response(201, json=conv)
        if not tail:
            data = list(reversed(self.conversations.values()))
            return httpx.Response(200, json={"data": data, "count": len(data)})
        conv = self.conversations.get(int(tail))
        if conv is None:
            return httpx.Response(404, json={"error": "gone", "error_type": "not_found"})
        if method == "PATCH":
            conv["title"] = body["title"]
        if method == "DELETE":
            del self.conversations[int(tail)]
            return httpx.Response(204)
        return httpx.Response(200, json=conv)

    def _chat(self, body: Any) -> httpx.Response:
        conv = self.conversations[body["conversation_id"]]
        question = body["messages"][-1]["content"]
        final = {
            "answer": "知库支持PDF[1]。",
            "grounded": True,
            "citations": [CITATION],
            "query": question,
            "conversation_id": conv["id"],
            "message_id": 100 + conv["id"],
        }
        conv["messages"] += [
            {"id": 99, "role": "user", "content": question, "created_at": NOW},
            {
                "id": final["message_id"],
                "role": "assistant",
                "content": final["answer"],
                "citations": [CITATION],
                "query": question,
                "created_at": NOW,
            },
        ]
        sources = {"sources": [{**CITATION, "quote": "知库支持 PDF、Word 和网页。"}]}
        tokens = "".join(
            f"event: token\ndata: {json.dumps({'text': t})}\n\n" for t in ("知库支持", "PDF[1]。")
        )
        if self.fail_after_sources:
            error = {"error": "the llm worker stopped", "error_type": "not_ready"}
            tokens, final_event = "", f"event: error\ndata: {json.dumps(error)}\n\n"
        else:
            final_event = f"event: end\ndata: {json.dumps(final)}\n\n"
        text = f"event: sources\ndata: {json.dumps(sources)}\n\n{tokens}{final_event}"
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
