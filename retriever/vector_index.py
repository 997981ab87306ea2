"""Dense index: exact inner-product search over unit vectors, keyed by chunk id."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from retriever.persist import atomic_write_with


class FaissIndex:
    """``IndexIDMap2(IndexFlatIP(dim))``; chunk ids are the FAISS ids, so deletes need no map."""

    def __init__(self, index: faiss.IndexIDMap2) -> None:
        self._index = index

    @classmethod
    def create(cls, dim: int) -> FaissIndex:
        """An empty index for vectors of ``dim`` floats."""
        if dim < 1:
            raise ValueError(f"vector dimension must be positive, got {dim}")
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        """Read an index written by :meth:`save`."""
        index = faiss.read_index(str(path))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{path} holds a {type(index).__name__}, not an IndexIDMap2")
        return cls(index)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        return {int(i) for i in faiss.vector_to_array(self._index.id_map)}

    def upsert(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors; an id already present is replaced, never duplicated."""
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(
                f"expected {len(ids)} vectors of dim {self.dim}, got shape {vectors.shape}"
            )
        if len(np.unique(ids)) != len(ids):
            raise ValueError("chunk ids in one upsert must be unique")
        self.remove(ids)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove these ids; answers how many were present."""
        if len(ids) == 0:
            return 0
        # faiss's Python wrapper takes an id array here; its stubs only know the IDSelector form.
        selector = np.ascontiguousarray(ids, dtype=np.int64)
        return int(self._index.remove_ids(selector))  # type: ignore[arg-type]

    def search(self, query: NDArray[np.float32], k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids with their inner product, best first."""
        if self.count == 0 or k < 1:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self._index.search(q, min(k, self.count))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def similarity(self, query: NDArray[np.float32], ids: list[int]) -> dict[int, float]:
        """Inner product of ``query`` with the stored vectors of ``ids`` (missing ids skipped)."""
        q = query.reshape(-1).astype(np.float32)
        sims: dict[int, float] = {}
        for chunk_id in ids:
            try:
                stored = self._index.reconstruct(chunk_id)
            except RuntimeError:  # IndexIDMap2 raises for an id it does not hold
                continue
            sims[chunk_id] = float(np.dot(stored, q))
        return sims

    def save(self, path: Path) -> None:
        """Persist atomically (temp file in the same directory, fsync, rename)."""
        atomic_write_with(path, lambda tmp: faiss.write_index(self._index, str(tmp)))
