"""Keyword index: BM25 over jieba tokens, with Traditional Chinese folded into Simplified.

Why our own inverted index: chunks arrive one document at a time and are deleted one document at
a time, so the index must change in place. The maintained BM25 libraries on PyPI (``bm25s``,
``rank-bm25``) precompute scores for a fixed corpus when they are built and offer no way to add
or remove a document without re-indexing everything (bm25s issues #5, #22 and #98 say so). Here
the postings hold raw term frequencies and BM25 is computed at query time from the postings of
the query's terms only, so an add or a delete touches just that chunk's terms.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import jieba
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


class KeywordIndex:
    """An in-memory inverted index (term -> {chunk_id: tf}) updated one chunk at a time."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[int, int]] = {}
        self._doc_terms: dict[int, dict[str, int]] = {}
        self._doc_len: dict[int, int] = {}
        self._total_len = 0

    @property
    def count(self) -> int:
        return len(self._doc_terms)

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        return set(self._doc_terms)

    def upsert(self, chunk_id: int, text: str) -> None:
        """Index ``text`` under ``chunk_id``, replacing what that id held before."""
        self._insert_terms(chunk_id, dict(Counter(tokenize(text))))

    def remove(self, chunk_id: int) -> bool:
        """Drop a chunk; answers whether it was present."""
        terms = self._doc_terms.pop(chunk_id, None)
        if terms is None:
            return False
        for term in terms:
            posting = self._postings[term]
            del posting[chunk_id]
            if not posting:
                del self._postings[term]
        self._total_len -= self._doc_len.pop(chunk_id)
        return True

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25 (k1=1.5, b=0.75), best first."""
        n_docs = self.count
        if n_docs == 0 or k < 1:
            return []
        avg_len = self._total_len / n_docs or 1.0
        scores: dict[int, float] = {}
        for term, q_tf in Counter(tokenize(query)).items():
            posting = self._postings.get(term)
            if not posting:
                continue
            df = len(posting)
            # The "+1" form of idf stays positive even for a term found in most chunks.
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            for chunk_id, tf in posting.items():
                norm = K1 * (1.0 - B + B * self._doc_len[chunk_id] / avg_len)
                gain = q_tf * idf * tf * (K1 + 1.0) / (tf + norm)
                scores[chunk_id] = scores.get(chunk_id, 0.0) + gain
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return ranked[:k]

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
        for cid, terms in payload["docs"].items():
            index._insert_terms(int(cid), {str(t): int(n) for t, n in terms.items()})
        return index

    def _insert_terms(self, chunk_id: int, terms: dict[str, int]) -> None:
        self.remove(chunk_id)
        self._doc_terms[chunk_id] = terms
        length = sum(terms.values())
        self._doc_len[chunk_id] = length
        self._total_len += length
        for term, tf in terms.items():
            self._postings.setdefault(term, {})[chunk_id] = tf
