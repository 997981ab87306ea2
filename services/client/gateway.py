"""The gateway client's endpoints: knowledge bases, documents, jobs, search, chat, conversations."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from services.client.base import BaseClient
from services.client.sse import GatewayError, chat_events, error_from_response
from services.common.conversation_schemas import (
    ConversationDetail,
    ConversationPublic,
    ConversationsPublic,
    FeedbackCreate,
    FeedbackPublic,
)
from services.common.schemas import (
    AnswerMode,
    ChatMessage,
    ChatResponse,
    ChunkPublic,
    DocumentsPublic,
    HealthPublic,
    JobPublic,
    JobStage,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    SearchMode,
    SearchResponse,
    SourcesEvent,
    StepEvent,
    UploadAccepted,
)
from services.common.web_sessions import LoginConfig, LoginPublic, WhoAmI

# File types the ingestion pipeline parses; the gateway refuses the others.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    "txt", "md", "html", "htm", "csv", "pdf", "docx", "xlsx", "xlsm", "pptx", "png", "jpg", "jpeg",
)  # fmt: skip
FINISHED_STAGES = frozenset({JobStage.DONE, JobStage.FAILED})

MessageLike = ChatMessage | dict[str, str]


@dataclass
class ChatOptions:
    """Per-request chat settings; None keeps the gateway's default."""

    top_k: int | None = None
    mode: SearchMode | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    system_prompt: str | None = None
    conversation_id: int | None = None
    answer_mode: AnswerMode | None = None


class GatewayClient(BaseClient):
    """Synchronous client of the gateway's public API; every method returns the wire schemas."""

    def openai_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/chat/completions as given; the reply's JSON (not streamed)."""
        reply: dict[str, Any] = self._request("POST", "/v1/chat/completions", json=body).json()
        return reply

    def health(self) -> HealthPublic:
        """``GET /healthz``: the gateway process is up."""
        return self._get_model(HealthPublic, "GET", "/healthz")

    def ready(self) -> HealthPublic:
        """``GET /readyz``: status ``unavailable`` (not an error) while a dependency is loading."""
        response = self._send("GET", "/readyz")
        if response.status_code == 503:
            try:
                return HealthPublic.model_validate_json(response.content)
            except ValidationError:
                # A 503 from a proxy in front carries no HealthPublic: report it as an error.
                raise error_from_response(response) from None
        if response.is_error:
            raise error_from_response(response)
        return HealthPublic.model_validate_json(response.content)

    def login_required(self) -> bool:
        """Whether the gateway has web users, so that a login is needed."""
        return self._get_model(LoginConfig, "GET", "/api/v1/auth/config").login_required

    def login(self, username: str, password: str) -> LoginPublic:
        """A session token for a web user (401 ``unauthorized`` on a wrong pair)."""
        body = {"username": username, "password": password}
        return self._get_model(LoginPublic, "POST", "/api/v1/auth/login", json=body)

    def logout(self) -> None:
        """End the login whose token this client sends."""
        self._request("POST", "/api/v1/auth/logout")

    def whoami(self) -> WhoAmI:
        """Who the gateway takes this client for."""
        return self._get_model(WhoAmI, "GET", "/api/v1/auth/me")

    def list_knowledge_bases(self) -> KnowledgeBasesPublic:
        """All knowledge bases."""
        return self._get_model(KnowledgeBasesPublic, "GET", "/api/v1/knowledge-bases")

    def get_knowledge_base(self, name: str) -> KnowledgeBasePublic:
        """One knowledge base by name (404 ``not_found``)."""
        return self._get_model(KnowledgeBasePublic, "GET", self._kb_path(name))

    def create_knowledge_base(self, name: str, description: str = "") -> KnowledgeBasePublic:
        """Create a knowledge base (409 ``conflict`` if the name exists)."""
        # Sent unvalidated: the gateway's 422 body explains a bad name better than a local error.
        body = {"name": name, "description": description}
        return self._get_model(KnowledgeBasePublic, "POST", "/api/v1/knowledge-bases", json=body)

    def delete_knowledge_base(self, name: str) -> None:
        """Delete a knowledge base with its documents."""
        self._request("DELETE", self._kb_path(name))

    def upload(self, kb: str, files: Sequence[tuple[str, bytes]]) -> UploadAccepted:
        """Upload files ``(filename, content)``; ingestion runs in the background as jobs."""
        parts = [
            ("files", (name, content, mimetypes.guess_type(name)[0] or "application/octet-stream"))
            for name, content in files
        ]
        path = f"{self._kb_path(kb)}/documents"
        return self._get_model(UploadAccepted, "POST", path, files=parts, timeout=self.chat_timeout)

    def list_documents(self, kb: str) -> DocumentsPublic:
        """Documents of a knowledge base."""
        return self._get_model(DocumentsPublic, "GET", f"{self._kb_path(kb)}/documents")

    def delete_document(self, kb: str, document_id: int) -> None:
        """Delete one document and its chunks."""
        self._request("DELETE", f"{self._kb_path(kb)}/documents/{document_id}")

    def list_jobs(self, kb: str) -> list[JobPublic]:
        """Ingestion jobs of a knowledge base."""
        body = self._request("GET", f"{self._kb_path(kb)}/jobs").json()
        return [JobPublic.model_validate(item) for item in body.get("data", [])]

    def get_job(self, job_id: str) -> JobPublic:
        """One ingestion job: its stage, progress and failure reason."""
        return self._get_model(JobPublic, "GET", f"/api/v1/jobs/{quote(job_id, safe='')}")

    def follow_jobs(
        self, job_ids: Sequence[str], interval_s: float = 0.5, timeout_s: float | None = None
    ) -> Iterator[JobPublic]:
        """Poll jobs until each is done or failed, yielding every fresh state (finished last)."""
        pending = list(job_ids)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while pending:
            for job_id in list(pending):
                job = self.get_job(job_id)
                if job.stage in FINISHED_STAGES:
                    pending.remove(job_id)
                yield job
            if not pending:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise GatewayError(0, f"jobs still running after {timeout_s:.0f} s", "timeout")
            time.sleep(interval_s)

    def search(
        self,
        kb: str,
        query: str,
        top_k: int = 5,
        mode: SearchMode | None = None,
        rerank: bool | None = None,
    ) -> SearchResponse:
        """Search a knowledge base (hybrid unless another mode is given)."""
        body = {"knowledge_base": kb, "query": query, "top_k": top_k, "mode": mode}
        if rerank is not None:
            body["rerank"] = rerank
        return self._get_model(SearchResponse, "POST", "/api/v1/search", json=body)

    def chat(
        self, kb: str, messages: Sequence[MessageLike], options: ChatOptions | None = None
    ) -> ChatResponse:
        """Answer the last user message from the knowledge base, with citations."""
        body = _chat_body(kb, messages, stream=False, options=options)
        return self._get_model(
            ChatResponse, "POST", "/api/v1/chat", json=body, timeout=self.chat_timeout
        )

    def chat_stream(
        self, kb: str, messages: Sequence[MessageLike], options: ChatOptions | None = None
    ) -> Iterator[str | StepEvent | SourcesEvent | ChatResponse]:
        """Stream the answer: a deep chat's steps, its sources, token texts, the ChatResponse."""
        body = _chat_body(kb, messages, stream=True, options=options)
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream(
                "POST", "/api/v1/chat", json=body, headers=headers, timeout=self.chat_timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                yield from chat_events(response.iter_lines())
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    # --- web app extras: knowledge base edits, chunks, jobs, conversations, feedback ---------

    def update_knowledge_base(
        self, name: str, new_name: str | None = None, description: str | None = None
    ) -> KnowledgeBasePublic:
        """Rename a knowledge base or change its description."""
        body = {
            k: v for k, v in (("name", new_name), ("description", description)) if v is not None
        }
        return self._get_model(KnowledgeBasePublic, "PATCH", self._kb_path(name), json=body)

    def get_chunk(self, kb: str, chunk_id: int) -> ChunkPublic:
        """One chunk's full text, its document and its position."""
        return self._get_model(ChunkPublic, "GET", f"{self._kb_path(kb)}/chunks/{chunk_id}")

    def page_image(self, document_id: int, page: int, highlight: str = "") -> bytes:
        """A PDF page as PNG bytes, the passage ``highlight`` outlined where it is found."""
        params = {"highlight": highlight[:2000]} if highlight else None
        path = f"/api/v1/documents/{document_id}/pages/{page}.png"
        return self._request("GET", path, params=params).content

    def retry_job(self, job_id: str) -> JobPublic:
        """Queue a failed ingestion job again."""
        path = f"/api/v1/jobs/{quote(job_id, safe='')}/retry"
        return self._get_model(JobPublic, "POST", path)

    def create_conversation(self, kb: str, title: str = "") -> ConversationPublic:
        """A new saved conversation with a knowledge base."""
        body = {"knowledge_base": kb, "title": title}
        return self._get_model(ConversationPublic, "POST", "/api/v1/conversations", json=body)

    def list_conversations(self, kb: str) -> ConversationsPublic:
        """Saved conversations of a knowledge base, most recent first."""
        params = {"knowledge_base": kb}
        return self._get_model(ConversationsPublic, "GET", "/api/v1/conversations", params=params)

    def get_conversation(self, conversation_id: int) -> ConversationDetail:
        """A saved conversation with its messages."""
        path = f"/api/v1/conversations/{conversation_id}"
        return self._get_model(ConversationDetail, "GET", path)

    def rename_conversation(self, conversation_id: int, title: str) -> ConversationPublic:
        """Give a saved conversation a new title."""
        path = f"/api/v1/conversations/{conversation_id}"
        return self._get_model(ConversationPublic, "PATCH", path, json={"title": title})

    def delete_conversation(self, conversation_id: int) -> None:
        """Delete a saved conversation."""
        self._request("DELETE", f"/api/v1/conversations/{conversation_id}")

    def send_feedback(self, feedback: FeedbackCreate) -> FeedbackPublic:
        """Rate an answer (again rating the same answer replaces the earlier rating)."""
        body = feedback.model_dump()
        return self._get_model(FeedbackPublic, "POST", "/api/v1/feedback", json=body)

    def export_feedback(self, fmt: str = "jsonl") -> bytes:
        """Every rating as JSON lines or CSV."""
        return self._request("GET", "/api/v1/feedback/export", params={"format": fmt}).content


def _chat_body(
    kb: str, messages: Sequence[MessageLike], stream: bool, options: ChatOptions | None
) -> dict[str, Any]:
    msgs = [ChatMessage.model_validate(m).model_dump() for m in messages]
    opts = asdict(options or ChatOptions())
    extra = {key: value for key, value in opts.items() if value is not None}
    return {"knowledge_base": kb, "messages": msgs, "stream": stream, **extra}
