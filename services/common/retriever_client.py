"""The internal retriever service as seen by the gateway and the ingestion worker."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from services.common.chunks import ChunkIn, ScoredChunk
from services.common.errors import (
    NotReadyError,
    UpstreamError,
    ZhikuError,
    error_from_payload,
)
from services.common.retriever_schemas import (
    EmbedderInfo,
    IndexAddRequest,
    IndexAddResponse,
    IndexDeleteRequest,
    IndexIds,
    RetrieverReadiness,
    RetrieverSearchRequest,
    RetrieverSearchResponse,
)
from services.common.schemas import SearchMode


class RetrieverClient:
    """Calls the retriever, with the shared ZHIKU_INTERNAL_TOKEN as a bearer key when set."""

    def __init__(
        self, base_url: str, timeout_s: float = 120.0, token: SecretStr | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NotReadyError(f"retriever unreachable at {self._http.base_url}: {exc}") from exc
        body: dict[str, Any] = response.json() if response.content else {}
        if response.status_code == 401:
            # Our own misconfiguration, not the caller's: never pass it on as their 401.
            raise UpstreamError(
                "the retriever refused the internal token: every process needs the same "
                "ZHIKU_INTERNAL_TOKEN"
            )
        if response.status_code >= 400:
            raise error_from_payload(response.status_code, body)
        return body

    def ready(self) -> bool:
        try:
            self._call("GET", "/readyz")
        except ZhikuError:
            return False
        return True

    def rebuild_needed(self) -> list[int]:
        """Knowledge bases whose index the retriever moved aside as unreadable."""
        return RetrieverReadiness.model_validate(self._call("GET", "/readyz")).rebuild_needed

    def rebuilt(self, kb_id: int) -> None:
        """Tell the retriever the index of ``kb_id`` holds every chunk again."""
        self._call("POST", f"/internal/indexes/{kb_id}/rebuilt")

    def info(self) -> tuple[str, int]:
        """The embedding model name and dimension the retriever serves."""
        info = EmbedderInfo.model_validate(self._call("GET", "/internal/info"))
        return info.embedding_model, info.dim

    def add(self, kb_id: int, model: str, dim: int, items: list[ChunkIn]) -> int:
        """Index chunks embedded with ``model``; answers the index's count afterwards."""
        payload = IndexAddRequest(embedding_model=model, dim=dim, items=items)
        body = self._call(
            "POST", f"/internal/indexes/{kb_id}/chunks", json=payload.model_dump(mode="json")
        )
        return IndexAddResponse.model_validate(body).total

    def delete(self, kb_id: int, chunk_ids: list[int]) -> None:
        if chunk_ids:
            payload = IndexDeleteRequest(chunk_ids=chunk_ids).model_dump()
            self._call("POST", f"/internal/indexes/{kb_id}/delete", json=payload)

    def ids(self, kb_id: int) -> list[int]:
        """Every chunk id in a knowledge base's index (empty when it has none)."""
        return IndexIds.model_validate(self._call("GET", f"/internal/indexes/{kb_id}/ids")).ids

    def drop(self, kb_id: int) -> None:
        self._call("DELETE", f"/internal/indexes/{kb_id}")

    def search(
        self,
        kb_id: int,
        query: str,
        top_k: int,
        model: str,
        mode: SearchMode = "hybrid",
        rerank: bool = False,
    ) -> list[ScoredChunk]:
        request = RetrieverSearchRequest(
            kb_id=kb_id, query=query, top_k=top_k, mode=mode, rerank=rerank, embedding_model=model
        )
        body = self._call("POST", "/internal/search", json=request.model_dump())
        return RetrieverSearchResponse.model_validate(body).hits
