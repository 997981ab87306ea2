"""The internal retriever service as seen by the gateway and the ingestion worker."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from services.common.errors import NotReadyError, ZhikuError, error_from_payload
from services.common.retriever_schemas import (
    EmbedderInfo,
    IndexAddRequest,
    IndexAddResponse,
    IndexDeleteRequest,
    IndexIds,
    RetrieverHit,
    RetrieverSearchRequest,
    RetrieverSearchResponse,
)
from services.common.retriever_schemas import IndexItem as WireItem
from services.common.schemas import SearchMode


@dataclass(frozen=True)
class IndexItem:
    chunk_id: int
    document_id: int
    text: str
    vector: NDArray[np.float32]


class RetrieverClient:
    def __init__(self, base_url: str, timeout_s: float = 120.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NotReadyError(f"retriever unreachable at {self._http.base_url}: {exc}") from exc
        body: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            raise error_from_payload(response.status_code, body)
        return body

    def ready(self) -> bool:
        try:
            self._call("GET", "/readyz")
        except ZhikuError:
            return False
        return True

    def info(self) -> tuple[str, int]:
        """The embedding model name and dimension the retriever serves."""
        info = EmbedderInfo.model_validate(self._call("GET", "/internal/info"))
        return info.embedding_model, info.dim

    def add(self, kb_id: int, model: str, dim: int, items: list[IndexItem]) -> int:
        payload = IndexAddRequest(
            embedding_model=model,
            dim=dim,
            items=[
                WireItem(
                    chunk_id=it.chunk_id,
                    document_id=it.document_id,
                    text=it.text,
                    vector=base64.b64encode(it.vector.astype("<f4").tobytes()).decode(),
                )
                for it in items
            ],
        )
        body = self._call("POST", f"/internal/indexes/{kb_id}/chunks", json=payload.model_dump())
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
    ) -> list[RetrieverHit]:
        request = RetrieverSearchRequest(
            kb_id=kb_id, query=query, top_k=top_k, mode=mode, rerank=rerank, embedding_model=model
        )
        body = self._call("POST", "/internal/search", json=request.model_dump())
        return RetrieverSearchResponse.model_validate(body).hits
