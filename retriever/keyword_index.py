"""Keyword index: BM25 over jieba tokens, with Traditional Chinese folded into Simplified.

Why our own inverted index: chunks arrive one document at a time and are deleted one document at
a time, so the index must change in place. The maintained BM25 libraries on PyPI (``bm25s``,
``rank-bm25``) precompute scores for a fixed corpus when they are built and offer no way to add
or remove a document without re-indexing everything (bm25s issues #5, #22 and #98 say so). Here
the postings hold raw term frequencies and BM25 is computed at query time from the postings of
the query's terms only, so an add or a delete touches just that chunk's terms.

Each chunk gets a dense slot number; postings map slot -> tf in dicts (cheap to change one
chunk), and a query scores with numpy arrays built from a posting the first time it is read
after a change, so a common term's 80k postings cost one vectorised pass, not a Python loop.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import jieba
import numpy as np
from numpy.typing import NDArray
from opencc import OpenCC

from retriever.persist import atomic_write_json, read_json

logger = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
FORMAT_VERSION = 1

# jieba announces its dictionary loading on its own stderr handler; our logs say enough.
jieba.setLogLevel(logging.WARNING)


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    # Built once: loading the conversion dictionaries takes a moment; convert() is read-only after.
    return OpenCC("t2s")


def warm_up() -> None:
    """Load the jieba dictionary and the OpenCC tables now rather than on the first request."""
    jieba.initialize()
    _t2s()


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of the Simplified, lowercased text, without punctuation/space."""
    simplified = _t2s().convert(text).lower()
    return [tok for tok in jieba.cut_for_search(simplified) if any(ch.isalnum() for ch in tok)]


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of ``text`` as the index stores them."""
    return dict(Counter(tokenize(text)))


class KeywordIndex:
    """An in-memory inverted index (term -> {slot: tf}) updated one chunk at a time."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[int, int]] = {}
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        self._doc_terms: dict[int, dict[str, int]] = {}
        self._slot: dict[int, int] = {}
        self._free: list[int] = []
        self._chunk_of = np.zeros(0, dtype=np.int64)
        self._doc_len = np.zeros(0, dtype=np.float64)
        self._total_len = 0

    @property
    def count(self) -> int:
        return len(self._doc_terms)

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        return set(self._doc_terms)

    def upsert(self, chunk_id: int, text: str) -> None:
        """Index ``text`` under ``chunk_id``, replacing what that id held before."""
        self.upsert_terms(chunk_id, term_counts(text))

    def upsert_terms(self, chunk_id: int, terms: dict[str, int]) -> None:
        """Index already counted terms (see :func:`term_counts`) under ``chunk_id``."""
        self.remove(chunk_id)
        slot = self._free.pop() if self._free else self._new_slot()
        self._slot[chunk_id] = slot
        self._doc_terms[chunk_id] = terms
        length = sum(terms.values())
        self._chunk_of[slot] = chunk_id
        self._doc_len[slot] = length
        self._total_len += length
        for term, tf in terms.items():
            self._postings.setdefault(term, {})[slot] = tf
            self._arrays.pop(term, None)

    def remove(self, chunk_id: int) -> bool:
        """Drop a chunk; answers whether it was present."""
        terms = self._doc_terms.pop(chunk_id, None)
        if terms is None:
            return False
        slot = self._slot.pop(chunk_id)
        for term in terms:
            posting = self._postings[term]
            del posting[slot]
            if not posting:
                del self._postings[term]
            self._arrays.pop(term, None)
        self._total_len -= int(self._doc_len[slot])
        self._doc_len[slot] = 0.0
        self._free.append(slot)
        return True

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25 (k1=1.5, b=0.75), best first."""
        n_docs = self.count
        if n_docs == 0 or k < 1:
            return []
        avg_len = self._total_len / n_docs or 1.0
        scores = np.zeros(len(self._doc_len), dtype=np.float64)
        for term, q_tf in Counter(tokenize(query)).items():
            if term not in self._postings:
                continue
            slots, tfs = self._posting_arrays(term)
            df = len(slots)
            # The "+1" form of idf stays positive even for a term found in most chunks.
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            norm = K1 * (1.0 - B + B * self._doc_len[slots] / avg_len)
            # Same operation order as the scalar formula, so scores match it bit for bit.
            scores[slots] += q_tf * idf * tfs * (K1 + 1.0) / (tfs + norm)
        return self._top(scores, k)

    def save(self, path: Path) -> None:
        """Persist atomically as JSON: per chunk its term frequencies; postings are derived."""
        docs = {str(cid): terms for cid, terms in self._doc_terms.items()}
        atomic_write_json(path, {"version": FORMAT_VERSION, "docs": docs})

    @classmethod
    def load(cls, path: Path) -> KeywordIndex:
        """Read an index written by :meth:`save` and rebuild its postings."""
        payload: dict[str, Any] = read_json(path)
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown keyword index version {payload.get('version')!r}")
        index = cls()
        docs: dict[str, dict[str, Any]] = payload["docs"]
        index._reserve(len(docs))
        for cid, terms in docs.items():
            index.upsert_terms(int(cid), {str(t): int(n) for t, n in terms.items()})
        return index

    def _posting_arrays(self, term: str) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        cached = self._arrays.get(term)
        if cached is None:
            posting = self._postings[term]
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            tfs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            cached = self._arrays[term] = (slots, tfs)
        return cached

    def _top(self, scores: NDArray[np.float64], k: int) -> list[tuple[int, float]]:
        # Every matched chunk scores > 0 (idf > 0, tf >= 1); free slots stay at 0.
        matched = np.flatnonzero(scores > 0.0)
        if len(matched) > k:
            # Keep every chunk tied with the k-th score so the id tie-break below stays exact.
            kth = np.partition(scores[matched], len(matched) - k)[len(matched) - k]
            matched = matched[scores[matched] >= kth]
        chunk_ids = self._chunk_of[matched]
        order = np.lexsort((chunk_ids, -scores[matched]))[:k]
        return [(int(chunk_ids[i]), float(scores[matched[i]])) for i in order]

    def _new_slot(self) -> int:
        slot = len(self._slot) + len(self._free)
        if slot >= len(self._doc_len):
            self._reserve(max(1024, 2 * len(self._doc_len)))
        return slot

    def _reserve(self, capacity: int) -> None:
        if capacity <= len(self._doc_len):
            return
        extra = capacity - len(self._doc_len)
        self._chunk_of = np.concatenate([self._chunk_of, np.zeros(extra, dtype=np.int64)])
        self._doc_len = np.concatenate([self._doc_len, np.zeros(extra, dtype=np.float64)])
