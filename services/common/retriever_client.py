"""The internal retriever service as seen by the gateway and the ingestion worker."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import numpy as np
from numpy.typing import NDArray

from services.common.errors import NotReadyError, ZhikuError, error_from_payload

SearchMode = Literal["dense", "keyword", "hybrid"]


@dataclass(frozen=True)
class RetrievedHit:
    chunk_id: int
    document_id: int
    score: float
    dense_score: float | None
    keyword_score: float | None


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
        body = self._call("GET", "/internal/info")
        return str(body["embedding_model"]), int(body["dim"])

    def add(self, kb_id: int, model: str, dim: int, items: list[IndexItem]) -> int:
        payload = {
            "embedding_model": model,
            "dim": dim,
            "items": [
                {
                    "chunk_id": it.chunk_id,
                    "document_id": it.document_id,
                    "text": it.text,
                    "vector": base64.b64encode(it.vector.astype("<f4").tobytes()).decode(),
                }
                for it in items
            ],
        }
        return int(self._call("POST", f"/internal/indexes/{kb_id}/chunks", json=payload)["total"])

    def delete(self, kb_id: int, chunk_ids: list[int]) -> None:
        if chunk_ids:
            self._call("POST", f"/internal/indexes/{kb_id}/delete", json={"chunk_ids": chunk_ids})

    def drop(self, kb_id: int) -> None:
        self._call("DELETE", f"/internal/indexes/{kb_id}")

    def search(
        self, kb_id: int, query: str, top_k: int, model: str, mode: SearchMode = "hybrid"
    ) -> list[RetrievedHit]:
        body = self._call(
            "POST",
            "/internal/search",
            json={
                "kb_id": kb_id,
                "query": query,
                "top_k": top_k,
                "mode": mode,
                "embedding_model": model,
            },
        )
        return [
            RetrievedHit(
                chunk_id=int(h["chunk_id"]),
                document_id=int(h["document_id"]),
                score=float(h["score"]),
                dense_score=h.get("dense_score"),
                keyword_score=h.get("keyword_score"),
            )
            for h in body["hits"]
        ]
