"""A small typed client of the zhiku gateway, shared by the web app and the CLI."""

from __future__ import annotations

import json
import logging
import mimetypes
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from services.common.errors import ERROR_TYPES
from services.common.schemas import (
    ChatMessage,
    ChatResponse,
    DocumentsPublic,
    HealthPublic,
    JobPublic,
    JobStage,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    SearchResponse,
    UploadAccepted,
)

logger = logging.getLogger(__name__)

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
# File types the ingestion pipeline parses; the gateway refuses the others.
SUPPORTED_EXTENSIONS: tuple[str, ...] = ("txt", "md", "html", "htm", "pdf", "docx")
FINISHED_STAGES = frozenset({JobStage.DONE, JobStage.FAILED})

ModelT = TypeVar("ModelT", bound=BaseModel)
MessageLike = ChatMessage | dict[str, str]


class GatewayError(Exception):
    """An error answered by the gateway (or 0 / ``unreachable`` when it could not be reached)."""

    def __init__(self, status_code: int, error: str, error_type: str) -> None:
        super().__init__(f"{error_type}: {error}")
        self.status_code = status_code
        self.error = error
        self.error_type = error_type


@dataclass
class SseEvent:
    """One Server-Sent Event: its name and its (joined) data lines."""

    event: str = "message"
    data: str = ""


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events of a ``text/event-stream`` body given line by line (comments and pings skipped)."""
    name = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or name:
                yield SseEvent(event=name or "message", data="\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        # The spec strips exactly one space after the colon.
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    if data:
        yield SseEvent(event=name or "message", data="\n".join(data))


def error_from_response(response: httpx.Response) -> GatewayError:
    """Build the GatewayError of an error response from its ``{error, error_type}`` body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and "error" in body:
        return GatewayError(
            response.status_code, str(body["error"]), str(body.get("error_type", "http_error"))
        )
    text = response.text.strip()[:500] or response.reason_phrase
    return GatewayError(response.status_code, text, "http_error")


def _error_from_event(data: str) -> GatewayError:
    try:
        body = json.loads(data)
    except json.JSONDecodeError:
        body = {"error": data}
    error_type = str(body.get("error_type", "upstream_error"))
    cls = ERROR_TYPES.get(error_type)
    return GatewayError(cls.status_code if cls else 502, str(body.get("error", "")), error_type)


class GatewayClient:
    """Synchronous client of the gateway's public API; every method returns the wire schemas."""

    def __init__(
        self,
        base_url: str = DEFAULT_GATEWAY_URL,
        api_key: str | None = None,
        timeout: float = 30.0,
        chat_timeout: float = 330.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.chat_timeout = chat_timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def _transport_error(self, exc: httpx.TransportError) -> GatewayError:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return GatewayError(0, f"gateway at {self.base_url} timed out: {exc}", "timeout")
        return GatewayError(
            0, f"gateway unreachable at URL: {self.base_url} ({exc})", "unreachable"
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        return response

    def _get_model(self, model: type[ModelT], method: str, path: str, **kwargs: Any) -> ModelT:
        response = self._request(method, path, **kwargs)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise GatewayError(
                response.status_code, f"unexpected answer from the gateway: {exc}", "bad_response"
            ) from exc

    @staticmethod
    def _kb_path(kb: str) -> str:
        return f"/api/v1/knowledge-bases/{quote(kb, safe='')}"

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

    def search(self, kb: str, query: str, top_k: int = 5) -> SearchResponse:
        """Hybrid search over a knowledge base."""
        body = {"knowledge_base": kb, "query": query, "top_k": top_k}
        return self._get_model(SearchResponse, "POST", "/api/v1/search", json=body)

    def chat(
        self, kb: str, messages: Sequence[MessageLike], top_k: int | None = None
    ) -> ChatResponse:
        """Answer the last user message from the knowledge base, with citations."""
        body = _chat_body(kb, messages, stream=False, top_k=top_k)
        return self._get_model(
            ChatResponse, "POST", "/api/v1/chat", json=body, timeout=self.chat_timeout
        )

    def chat_stream(
        self, kb: str, messages: Sequence[MessageLike], top_k: int | None = None
    ) -> Iterator[str | ChatResponse]:
        """Stream the answer: token texts as they come, then the final ChatResponse."""
        body = _chat_body(kb, messages, stream=True, top_k=top_k)
        headers = {"Accept": "text/event-stream"}
        try:
            with self._http.stream(
                "POST", "/api/v1/chat", json=body, headers=headers, timeout=self.chat_timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                yield from _chat_events(response.iter_lines())
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc


def _chat_body(
    kb: str, messages: Sequence[MessageLike], stream: bool, **opts: Any
) -> dict[str, Any]:
    msgs = [ChatMessage.model_validate(m).model_dump() for m in messages]
    extra = {key: value for key, value in opts.items() if value is not None}
    return {"knowledge_base": kb, "messages": msgs, "stream": stream, **extra}


def _chat_events(lines: Iterable[str]) -> Iterator[str | ChatResponse]:
    for event in parse_sse(lines):
        if event.event == "token":
            text = json.loads(event.data).get("text", "")
            if text:
                yield text
        elif event.event == "end":
            yield ChatResponse.model_validate_json(event.data)
            return
        elif event.event == "error":
            raise _error_from_event(event.data)
        else:
            logger.debug("ignoring SSE event %r", event.event)
    raise GatewayError(502, "the answer stream ended before its end event", "upstream_error")
