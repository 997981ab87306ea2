"""The synthetic corpus of bench.retrieval_scale and the bare engines it is timed against.

Chunks join two real sentence windows from the SQuAD-layout datasets (text: both, vector: their
normalised sum); the bare engines are FAISS and the keyword index in this process.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from retriever.offline import (
    AnnConfig,
    FusedHit,
    KeywordIndex,
    fuse,
    offline_reranker,
    rerank_hits,
    term_counts,
)
from services.common.embedding import UseEmbedder
from services.evaluation import load_squad

logger = logging.getLogger("bench.retrieval_scale")

FILES = ("cmrc2018_dev.json", "DRCD_dev.json", "xquad.zh.json", "xquad.en.json")
KB = "retrieval-scale"
TOP_K = 10
CHUNKS_PER_DOCUMENT = 100
MODES = {"dense": ("dense", False), "hybrid": ("hybrid", False), "hybrid+rerank": ("hybrid", True)}
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+")


@dataclass
class Corpus:
    """Chunks derived from embedded real sentence windows, and the questions to ask."""

    texts: list[str]
    vectors: NDArray[np.float32]
    terms: list[dict[str, int]]
    questions: list[str]
    pieces: int
    neighbours: int = 64  # each chunk pairs a window with one of its this many nearest

    def head(self, count: int) -> Corpus:
        """The first ``count`` chunks: the pairs are in random order, so a sample of them all."""
        return Corpus(
            self.texts[:count],
            self.vectors[:count],
            self.terms[:count],
            self.questions,
            self.pieces,
            self.neighbours,
        )


def _windows(paragraph: str, min_chars: int = 40, max_chars: int = 160) -> list[str]:
    """Consecutive sentences merged until at least ``min_chars`` (cut at ``max_chars``)."""
    out, current = [], ""
    for sentence in (s.strip() for s in _SENTENCE_END.split(paragraph)):
        current = f"{current} {sentence}".strip() if current else sentence
        if len(current) >= min_chars:
            out.append(current[:max_chars])
            current = ""
    return out


def build_corpus(datasets: Path, n_chunks: int, n_pieces: int, n_queries: int) -> Corpus:
    """Embed ``n_pieces`` real windows; each chunk joins two related ones (see markdown())."""
    rng = np.random.default_rng(0)
    sets = [load_squad(datasets / name) for name in FILES]
    windows = sorted({w for s in sets for p in s.paragraphs for w in _windows(p.text)})
    pieces = [windows[i] for i in rng.choice(len(windows), min(n_pieces, len(windows)), False)]
    started = time.monotonic()
    piece_vectors = UseEmbedder().embed(pieces)
    logger.info("embedded %d windows in %.0f s", len(pieces), time.monotonic() - started)
    piece_terms = [Counter(term_counts(p)) for p in pieces]
    # 64 nearest windows each give 32 pairs per window; past that (a million chunks from the
    # datasets' ~15,000 windows) each window pairs with more of its neighbours.
    neighbours = max(64, math.ceil(2.5 * n_chunks / len(pieces)))
    pairs = _related_pairs(rng, piece_vectors, n_chunks, neighbours)
    vectors = piece_vectors[pairs[:, 0]] + piece_vectors[pairs[:, 1]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"{pieces[a]}\n{pieces[b]}" for a, b in pairs]
    terms = [dict(piece_terms[a] + piece_terms[b]) for a, b in pairs]
    # Terms are summed from the two pieces; check that this is what tokenising the chunk gives.
    for i in rng.choice(n_chunks, min(200, n_chunks), False):
        assert term_counts(texts[i]) == terms[i], texts[i]
    per_set = math.ceil(n_queries / len(sets))
    questions = [q.text for s in sets for q in s.questions[:: max(1, len(s.questions) // per_set)]]
    order = rng.permutation(len(questions))[:n_queries]
    return Corpus(
        texts,
        vectors.astype(np.float32),
        terms,
        [questions[i] for i in order],
        len(pieces),
        neighbours,
    )


def _related_pairs(
    rng: np.random.Generator, vectors: NDArray[np.float32], count: int, neighbours: int = 64
) -> NDArray[np.int64]:
    """``count`` distinct pairs, each a piece and one of its ``neighbours`` nearest pieces."""
    n = len(vectors)
    if count > n * neighbours // 2:
        raise ValueError(f"{n} pieces make too few related pairs for {count} chunks")
    nearest = faiss.IndexFlatIP(vectors.shape[1])
    nearest.add(vectors)
    _, near = nearest.search(vectors, neighbours + 1)
    codes: set[int] = set()
    while len(codes) < count:
        a = rng.integers(0, n, count)
        b = near[a, rng.integers(1, neighbours + 1, count)]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        codes.update((lo * n + hi)[(lo != hi) & (hi >= 0)].tolist())
    chosen = np.array(sorted(codes), dtype=np.int64)[rng.permutation(len(codes))[:count]]
    return np.stack([chosen // n, chosen % n], axis=1)


class RawEngines:
    """The same data in plain faiss and the keyword index, called in this process."""

    def __init__(self, corpus: Corpus, ann: AnnConfig) -> None:
        self.embedder = UseEmbedder()
        self.reranker = offline_reranker("fusion")
        self.vectors = corpus.vectors
        self.exact = faiss.IndexFlatIP(corpus.vectors.shape[1])
        self.exact.add(corpus.vectors)
        self.dense: faiss.Index = self.exact
        self.ivf: dict[str, Any] = {}
        if len(corpus.vectors) >= ann.min_vectors:
            self.dense = self._ivf(corpus.vectors, ann)
        started = time.monotonic()
        self.keywords = KeywordIndex()
        self.keywords.upsert_many(list(enumerate(corpus.terms, start=1)))
        logger.info("raw keyword index built in %.0f s", time.monotonic() - started)

    def _ivf(self, vectors: NDArray[np.float32], ann: AnnConfig) -> faiss.IndexIVF:
        # The parameters the retriever's IVF uses (retriever.vector_index), in plain faiss.
        nlist = ann.nlist(len(vectors))
        dim = vectors.shape[1]
        index: faiss.IndexIVF
        if len(vectors) >= ann.sq8_min_vectors:
            index = faiss.IndexIVFScalarQuantizer(
                faiss.IndexFlatIP(dim),
                dim,
                nlist,
                faiss.ScalarQuantizer.QT_8bit,
                faiss.METRIC_INNER_PRODUCT,
            )
            index.by_residual = False
        else:
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT
            )
        index.cp.niter = ann.train_iterations
        index.cp.max_points_per_centroid = ann.train_per_list
        index.cp.min_points_per_centroid = min(8, ann.train_per_list)
        sample = np.random.default_rng(0).choice(
            len(vectors), min(len(vectors), nlist * ann.train_per_list), False
        )
        started = time.monotonic()
        index.train(vectors[np.sort(sample)])
        index.add(vectors)
        index.nprobe = min(ann.nprobe, nlist)
        self.ivf = {"nlist": nlist, "nprobe": index.nprobe, "train_s": time.monotonic() - started}
        return index

    def dense_ids(self, query: NDArray[np.float32], k: int) -> list[int]:
        """Chunk ids (1-based, as in the database) of the ``k`` best, best first."""
        _, ids = self.dense.search(query.reshape(1, -1), k)
        return [int(i) + 1 for i in ids[0] if i >= 0]

    def search(self, question: str, mode: str, rerank: bool, k: int = TOP_K) -> list[int]:
        """What the retriever computes for one request, with the plain calls."""
        query = self.embedder.embed([question])[0]
        if mode == "dense":
            return self.dense_ids(query, k)
        depth = max(k * 4, 20)
        if rerank:
            hits = self._hybrid(question, query, depth)
            return rerank_hits(self.reranker, question, hits, {})[:k]
        return [hit.chunk_id for hit in self._hybrid(question, query, k)]

    def _hybrid(self, question: str, query: NDArray[np.float32], k: int) -> list[FusedHit]:
        depth = max(k * 4, 20)
        scores, ids = self.dense.search(query.reshape(1, -1), depth)
        dense = {int(i) + 1: float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        keyword = dict(self.keywords.search(question, depth))
        fused = fuse([list(dense), list(keyword)])[:k]
        for chunk_id, _ in fused:
            if chunk_id not in dense:
                dense[chunk_id] = float(self.vectors[chunk_id - 1] @ query)
        return [
            FusedHit(c, (c - 1) // CHUNKS_PER_DOCUMENT + 1, score, dense.get(c), keyword.get(c))
            for c, score in fused
        ]
