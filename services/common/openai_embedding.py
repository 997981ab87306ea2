"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` (TEI, Xinference, Ollama, vLLM, ...).

The model name the server is asked for is the embedder's name (``openai:<model>``), so the
embedding-model check refuses to mix its vectors with another model's in one knowledge base.
"""

from __future__ import annotations

import logging

import httpx2
import numpy as np
import openai
from numpy.typing import NDArray

from services.common.errors import NotReadyError, UpstreamError
from services.common.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


class OpenAIEmbedder:
    """Batches of texts to the server's /embeddings; failed batches are retried with backoff."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        if not settings.base_url or not settings.model:
            raise NotReadyError(
                "the openai embedding backend needs ZHIKU_EMBEDDING__BASE_URL and "
                "ZHIKU_EMBEDDING__MODEL (e.g. http://127.0.0.1:8080/v1 and the model's name)"
            )
        self._model = settings.model
        self._batch_size = settings.batch_size
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=httpx2.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            # The client retries connection errors, 408, 409, 429 and 5xx with exponential backoff.
            max_retries=settings.retries,
        )
        self.name = f"openai:{settings.model}"
        self.dim = int(self._batch(["dimension probe"]).shape[1])
        logger.info("embedding with %s at %s (dim %s)", self.name, settings.base_url, self.dim)

    def _batch(self, texts: list[str]) -> NDArray[np.float32]:
        try:
            response = self._client.embeddings.create(
                model=self._model, input=texts, encoding_format="float"
            )
        except openai.APIStatusError as exc:
            raise UpstreamError(
                f"embedding server answered {exc.status_code}: {exc.message}"
            ) from exc
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            raise NotReadyError(f"embedding server {self._client.base_url} failed: {exc}") from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise UpstreamError(f"embedding server returned {len(rows)} vectors for {len(texts)}")
        return np.asarray([row.embedding for row in rows], dtype=np.float32)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = self._batch_size
        vectors = np.vstack([self._batch(texts[i : i + step]) for i in range(0, len(texts), step)])
        if vectors.shape[1] != self.dim:
            raise UpstreamError(
                f"embedding server changed dimension {self.dim} → {vectors.shape[1]}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(vectors / norms, dtype=np.float32)
