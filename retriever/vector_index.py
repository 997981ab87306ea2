"""Dense index over unit vectors keyed by chunk id: exact while small, IVF once large.

Below ``AnnConfig.min_vectors`` the index is ``IndexIDMap2(IndexFlatIP)``: exact, no training.
From there on it is an IVF (inner product, hashtable direct map, so ids can still be removed
and reconstructed) trained on a capped sample of the vectors it holds, and rebuilt once the
count has doubled or halved since training: ``IndexIVFFlat`` (4 bytes a dimension) up to
``AnnConfig.sq8_min_vectors``, then ``IndexIVFScalarQuantizer`` with 8-bit codes (1 byte a
dimension: 512 MB instead of 2 GB for a million 512-d vectors). Each kind turns back under half
of its threshold, so a base hovering around one does not flip on every batch.

A saved index is read memory-mapped (``IO_FLAG_MMAP_IFC``): a restart does not copy the file
and the pages are shared with the page cache. FAISS cannot change a mapped index, so the first
write copies it into memory (:meth:`FaissIndex._writable`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from retriever.persist import atomic_write_with
from services.common.settings import RetrievalSettings

logger = logging.getLogger(__name__)

# The stubs shipped with faiss leave out the DirectMap enum.
HASHTABLE_DIRECT_MAP: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]
IVF_KINDS = (faiss.IndexIVFFlat, faiss.IndexIVFScalarQuantizer)
AnyIndex = faiss.IndexIDMap2 | faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer


@dataclass(frozen=True)
class AnnConfig:
    """When and how the dense index turns approximate (see RetrievalSettings)."""

    min_vectors: int = 50_000
    nprobe: int = 48
    lists_per_sqrt: float = 2.0
    train_per_list: int = 32
    train_iterations: int = 10
    sq8_min_vectors: int = 200_000
    mmap: bool = True

    @classmethod
    def from_settings(cls, retrieval: RetrievalSettings) -> AnnConfig:
        """The parameters the ``ZHIKU_RETRIEVAL__ANN_*`` settings give."""
        return cls(
            min_vectors=retrieval.ann_min_vectors,
            nprobe=retrieval.ann_nprobe,
            lists_per_sqrt=retrieval.ann_lists_per_sqrt,
            sq8_min_vectors=retrieval.ann_sq8_min_vectors,
            mmap=retrieval.ann_mmap,
        )

    def nlist(self, count: int) -> int:
        """Inverted lists for ``count`` vectors: ``lists_per_sqrt * sqrt(count)``, at least 1."""
        return max(1, round(self.lists_per_sqrt * math.sqrt(count)))


class FaissIndex:
    """Chunk ids are the FAISS ids, so deletes and lookups need no map of our own."""

    def __init__(
        self, index: AnyIndex, trained_for: int | None = None, mapped: bool = False
    ) -> None:
        self._index = index
        # Vectors held when the IVF was trained (None while exact): decides when to retrain.
        self.trained_for = trained_for
        # Read memory-mapped from a file: searchable, but copied into memory before a change.
        self.mapped = mapped

    @classmethod
    def create(cls, dim: int) -> FaissIndex:
        """An empty exact index for vectors of ``dim`` floats."""
        if dim < 1:
            raise ValueError(f"vector dimension must be positive, got {dim}")
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path, trained_for: int | None = None, mmap: bool = False) -> FaissIndex:
        """Read an index written by :meth:`save` (``mmap``: map it rather than copy it)."""
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        if isinstance(index, faiss.IndexIDMap2):
            return cls(index, mapped=mmap)
        if isinstance(index, IVF_KINDS):
            if index.direct_map.type != HASHTABLE_DIRECT_MAP:
                raise ValueError(f"{path}: IVF index without a hashtable direct map")
            return cls(index, trained_for or index.ntotal, mapped=mmap)
        raise ValueError(f"{path} holds a {type(index).__name__}, not a zhiku vector index")

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, IVF_KINDS)

    @property
    def kind(self) -> str:
        """``flat`` (exact), ``ivf-flat`` or ``ivf-sq8``."""
        if isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            return "ivf-sq8"
        return "ivf-flat" if self.approximate else "flat"

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        return {int(i) for ids, _ in self._batches(with_vectors=False) for i in ids}

    def contents(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """All ids and their vectors (copies, decoded for 8-bit codes), in storage order."""
        parts = list(self._batches(with_vectors=True))
        empty = (np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32))
        ids, vectors = zip(empty, *parts, strict=False)
        return np.concatenate(ids), np.vstack(vectors)

    def _batches(
        self, with_vectors: bool, size: int = 1 << 16
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """Ids and vectors in storage order, a bounded number at a time (rebuilds stay small)."""
        no_vectors = np.zeros((0, self.dim), dtype=np.float32)
        if isinstance(self._index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            for start in range(0, len(ids), size):
                part = ids[start : start + size]
                if not with_vectors:
                    yield part, no_vectors
                    continue
                vectors = self._index.index.reconstruct_n(start, len(part))
                yield part, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
            return
        lists = self._index.invlists
        assert lists is not None, "an IVF index always has inverted lists"
        code_size = int(self._index.code_size)
        for number in range(self._index.nlist):
            length = lists.list_size(number)
            if length == 0:
                continue
            ids = faiss.rev_swig_ptr(lists.get_ids(number), length).astype(np.int64)
            if not with_vectors:
                yield ids, no_vectors
                continue
            codes = faiss.rev_swig_ptr(lists.get_codes(number), length * code_size)
            yield ids, self._decode(codes.reshape(length, code_size))

    def _decode(self, codes: NDArray[np.uint8]) -> NDArray[np.float32]:
        if isinstance(self._index, faiss.IndexIVFScalarQuantizer):
            # Codes of the vectors themselves (by_residual off), so no centroid is needed.
            decoded = self._index.sq.decode(np.ascontiguousarray(codes))
            return np.asarray(decoded, dtype=np.float32).reshape(-1, self.dim)
        return codes.view(np.float32).reshape(-1, self.dim).copy()

    def _writable(self) -> AnyIndex:
        """The index, first copied into memory if it is mapped from a file FAISS cannot change."""
        if self.mapped:
            copy = faiss.deserialize_index(faiss.serialize_index(self._index))
            assert isinstance(
                copy, faiss.IndexIDMap2 | faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer
            ), "a copy is of the kind it copies"
            self._index, self.mapped = copy, False
        return self._index

    def upsert(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Add vectors; an id already present is replaced, never duplicated."""
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(
                f"expected {len(ids)} vectors of dim {self.dim}, got shape {vectors.shape}"
            )
        if len(np.unique(ids)) != len(ids):
            raise ValueError("chunk ids in one upsert must be unique")
        self.remove(ids)
        self._writable().add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove these ids; answers how many were present."""
        if len(ids) == 0:
            return 0
        # faiss's Python wrapper takes an id array here; its stubs only know the IDSelector form.
        selector = np.ascontiguousarray(ids, dtype=np.int64)
        return int(self._writable().remove_ids(selector))  # type: ignore[arg-type]

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
        """Pick the index kind for the count, or retrain the IVF, as it asks; True if rebuilt."""
        count, kind = self.count, self.kind
        wanted = _wanted_kind(count, kind, config)
        trained = self.trained_for
        if wanted == kind and trained is not None and not trained / 2 < count < 2 * trained:
            wanted = "retrain"
        if wanted == kind:
            if self.approximate:
                self._index.nprobe = min(config.nprobe, self._index.nlist)  # type: ignore[union-attr]
            return False
        started = time.monotonic()
        if wanted == "flat":
            index: AnyIndex = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            for ids, vectors in self._batches(with_vectors=True):
                index.add_with_ids(vectors, ids)
            self._index, self.trained_for, self.mapped = index, None, False
        else:
            self._rebuild(config, kind if wanted == "retrain" else wanted)
        logger.info(
            "dense index %s -> %s: %d vectors, %.1f s",
            kind,
            self.kind if wanted != "retrain" else f"{kind} (retrained)",
            count,
            time.monotonic() - started,
        )
        return True

    def _rebuild(self, config: AnnConfig, kind: str) -> None:
        count, nlist = self.count, config.nlist(self.count)
        quantizer = faiss.IndexFlatIP(self.dim)
        index: faiss.IndexIVFFlat | faiss.IndexIVFScalarQuantizer
        if kind == "ivf-sq8":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer,
                self.dim,
                nlist,
                faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT,
            )
            # Encode the vectors, not their residuals: contents() can then decode them alone.
            index.by_residual = False
        else:
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(HASHTABLE_DIRECT_MAP)
        index.cp.niter = config.train_iterations
        index.cp.max_points_per_centroid = config.train_per_list
        index.cp.min_points_per_centroid = min(8, config.train_per_list)
        # k-means on a capped, fixed sample keeps training to seconds on two cores; the vectors
        # are read a batch at a time, so a rebuild never holds all of them as floats.
        fraction = min(1.0, nlist * config.train_per_list / count)
        rng = np.random.default_rng(0)
        sample = [v[rng.random(len(v)) < fraction] for _, v in self._batches(with_vectors=True)]
        index.train(np.vstack(sample))
        for ids, vectors in self._batches(with_vectors=True):
            index.add_with_ids(vectors, ids)
        index.nprobe = min(config.nprobe, nlist)
        self._index, self.trained_for, self.mapped = index, count, False
        logger.info(
            "IVF %s: %d lists trained on %d vectors, nprobe %d",
            kind,
            nlist,
            sum(len(v) for v in sample),
            index.nprobe,
        )

    def save(self, path: Path) -> None:
        """Persist atomically (temp file in the same directory, fsync, rename)."""
        atomic_write_with(path, lambda tmp: faiss.write_index(self._index, str(tmp)))


def _wanted_kind(count: int, kind: str, config: AnnConfig) -> str:
    """The kind ``count`` vectors call for; each kind is left only under half its threshold."""
    if count < (config.min_vectors // 2 if kind != "flat" else config.min_vectors):
        return "flat"
    sq8_from = config.sq8_min_vectors // 2 if kind == "ivf-sq8" else config.sq8_min_vectors
    return "ivf-sq8" if count >= sq8_from else "ivf-flat"
