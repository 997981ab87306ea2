"""Dense index over unit vectors keyed by chunk id: exact while small, IVF once large.

Below ``AnnConfig.min_vectors`` the index is ``IndexIDMap2(IndexFlatIP)``: exact, no training.
From there on it is an ``IndexIVFFlat`` (inner product, hashtable direct map, so ids can still
be removed and reconstructed), trained on a capped sample of the vectors it holds and rebuilt
once the count has doubled or halved since training.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from retriever.persist import atomic_write_with

logger = logging.getLogger(__name__)

# The stubs shipped with faiss leave out the DirectMap enum.
HASHTABLE_DIRECT_MAP: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AnnConfig:
    """When and how the dense index turns approximate (see RetrievalSettings)."""

    min_vectors: int = 50_000
    nprobe: int = 48
    lists_per_sqrt: float = 2.0
    train_per_list: int = 32
    train_iterations: int = 10

    def nlist(self, count: int) -> int:
        """Inverted lists for ``count`` vectors: ``lists_per_sqrt * sqrt(count)``, at least 1."""
        return max(1, round(self.lists_per_sqrt * math.sqrt(count)))


class FaissIndex:
    """Chunk ids are the FAISS ids, so deletes and lookups need no map of our own."""

    def __init__(
        self, index: faiss.IndexIDMap2 | faiss.IndexIVFFlat, trained_for: int | None = None
    ) -> None:
        self._index = index
        # Vectors held when the IVF was trained (None while exact): decides when to retrain.
        self.trained_for = trained_for

    @classmethod
    def create(cls, dim: int) -> FaissIndex:
        """An empty exact index for vectors of ``dim`` floats."""
        if dim < 1:
            raise ValueError(f"vector dimension must be positive, got {dim}")
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path, trained_for: int | None = None) -> FaissIndex:
        """Read an index written by :meth:`save`."""
        index = faiss.read_index(str(path))
        if isinstance(index, faiss.IndexIDMap2):
            return cls(index)
        if isinstance(index, faiss.IndexIVFFlat):
            if index.direct_map.type != HASHTABLE_DIRECT_MAP:
                raise ValueError(f"{path}: IVF index without a hashtable direct map")
            return cls(index, trained_for or index.ntotal)
        raise ValueError(f"{path} holds a {type(index).__name__}, not a zhiku vector index")

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexIVFFlat)

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        return {int(i) for i in self._contents(with_vectors=False)[0]}

    def contents(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """All ids and their vectors (copies), in storage order."""
        return self._contents(with_vectors=True)

    def _contents(self, with_vectors: bool) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        no_vectors = np.zeros((0, self.dim), dtype=np.float32)
        if isinstance(self._index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            if not with_vectors:
                return ids, no_vectors
            vectors = self._index.index.reconstruct_n(0, self.count)
            return ids, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        lists = self._index.invlists
        assert lists is not None, "an IVF index always has inverted lists"
        id_parts, vector_parts = [np.zeros(0, dtype=np.int64)], [no_vectors]
        for number in range(self._index.nlist):
            size = lists.list_size(number)
            if size == 0:
                continue
            id_parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).astype(np.int64))
            if with_vectors:
                codes = faiss.rev_swig_ptr(lists.get_codes(number), size * self.dim * 4)
                vector_parts.append(codes.view(np.float32).reshape(size, self.dim).copy())
        return np.concatenate(id_parts), np.vstack(vector_parts)

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
            except RuntimeError:  # both index kinds raise for an id they do not hold
                continue
            sims[chunk_id] = float(np.dot(stored, q))
        return sims

    def tune(self, config: AnnConfig) -> bool:
        """Switch between exact and IVF, or retrain the IVF, as the count asks; True if rebuilt."""
        count = self.count
        if self.trained_for is None:
            if count < config.min_vectors:
                return False
            self._rebuild(config)
            return True
        if count < config.min_vectors // 2:
            # Hysteresis: a base hovering around the threshold does not flip on every batch.
            ids, vectors = self.contents()
            logger.info("dense index back to exact search: %d vectors", count)
            exact = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            exact.add_with_ids(vectors, ids)
            self._index, self.trained_for = exact, None
            return True
        if isinstance(self._index, faiss.IndexIVFFlat):
            self._index.nprobe = min(config.nprobe, self._index.nlist)
        if count >= 2 * self.trained_for or 2 * count <= self.trained_for:
            self._rebuild(config)
            return True
        return False

    def _rebuild(self, config: AnnConfig) -> None:
        started, switched = time.monotonic(), not self.approximate
        ids, vectors = self.contents()
        nlist = config.nlist(len(ids))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(HASHTABLE_DIRECT_MAP)
        index.cp.niter = config.train_iterations
        index.cp.max_points_per_centroid = config.train_per_list
        index.cp.min_points_per_centroid = min(8, config.train_per_list)
        # k-means on a capped, fixed sample keeps training to seconds on two cores.
        sample_size = min(len(ids), nlist * config.train_per_list)
        sample = np.random.default_rng(0).choice(len(ids), sample_size, replace=False)
        index.train(vectors[np.sort(sample)])
        index.add_with_ids(vectors, ids)
        index.nprobe = min(config.nprobe, nlist)
        self._index, self.trained_for = index, len(ids)
        logger.info(
            "dense index %s to IVF: %d vectors, %d lists (trained on %d), nprobe %d, %.1f s",
            "switched" if switched else "retrained",
            len(ids),
            nlist,
            sample_size,
            index.nprobe,
            time.monotonic() - started,
        )

    def save(self, path: Path) -> None:
        """Persist atomically (temp file in the same directory, fsync, rename)."""
        atomic_write_with(path, lambda tmp: faiss.write_index(self._index, str(tmp)))
