"""Keyword index: Tantivy's BM25 over our own analysis (jieba tokens, Traditional folded).

Tantivy owns the postings, segments, deletes, commits and scoring; zhiku owns the analysis:
OpenCC folds Traditional Chinese into Simplified, the text is lowercased and jieba cuts it in
search mode (jieba-rs through ``rjieba``: jieba's dictionary and algorithm in Rust, about 25
times faster than the Python package, the same words but for numbers with units, "2.4km").
The tokens are indexed as one whitespace-joined string under Tantivy's ``whitespace``
tokenizer and queried as exact terms, so the index and the query see the same words. Each
chunk's text is kept beside its terms (stored, not indexed) for the rerankers, so it is
replaced and deleted with them. Every change is one Tantivy commit before the call returns:
the commit is the durability point of the keyword half of an index (see docs/architecture.md).
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import rjieba
import tantivy

from services.common.script import fold

logger = logging.getLogger(__name__)

CHUNK_ID = "chunk_id"
TERMS = "terms"
TEXT = "text"
# Per batch writer: Tantivy's floor is 15 MB per indexing thread; one thread per knowledge base.
WRITER_HEAP_BYTES = 32_000_000


def warm_up() -> None:
    """Load the jieba dictionary and the OpenCC tables now rather than on the first request."""
    rjieba.cut("预热")  # the dictionary is built on the first cut
    fold("預熱")  # and the OpenCC tables on the first fold


def _cut_for_search(text: str) -> list[str]:
    return rjieba.cut_for_search(text)


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of the folded text (see :func:`fold`), without punctuation/space."""
    simplified = fold(text)
    # split(): a token never holds whitespace, so joining with spaces and splitting is lossless.
    return [
        part
        for tok in _cut_for_search(simplified)
        for part in tok.split()
        if any(ch.isalnum() for ch in part)
    ]


def term_counts(text: str) -> dict[str, int]:
    """Term frequencies of ``text`` as the index stores them."""
    return dict(Counter(tokenize(text)))


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field(CHUNK_ID, stored=False, indexed=True, fast=True)
    builder.add_text_field(TERMS, tokenizer_name="whitespace", index_option="freq")
    builder.add_bytes_field(TEXT, stored=True)
    return builder.build()


def _joined(terms: dict[str, int]) -> str:
    # Term order does not matter: the field keeps frequencies, not positions.
    return " ".join(term for term, tf in terms.items() for _ in range(tf))


def _chunk_ids(searcher: tantivy.Searcher, addresses: list[tantivy.DocAddress]) -> list[int]:
    """The chunk ids of hits, read from the fast field rather than stored documents."""
    values = searcher.fast_field_values(CHUNK_ID, addresses)
    if any(not isinstance(v, int) for v in values):
        raise ValueError("keyword index: a document without a chunk id")
    return [int(v) for v in values if isinstance(v, int)]


class KeywordIndex:
    """A Tantivy index of chunk ids and their terms, in ``path`` (None: in memory)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, path=None if path is None else str(path))

    @classmethod
    def create(cls, path: Path) -> KeywordIndex:
        """A new empty index in ``path``, replacing whatever was there."""
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> KeywordIndex:
        """The index committed in ``path``; ValueError when there is none."""
        if not tantivy.Index.exists(str(path)):
            raise ValueError(f"{path}: no keyword index")
        return cls(path)

    @property
    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    def ids(self) -> set[int]:
        """Every chunk id in the index."""
        searcher = self._index.searcher()
        n = searcher.num_docs
        if n == 0:
            return set()
        hits = searcher.search(tantivy.Query.all_query(), limit=n, count=False).hits
        return set(_chunk_ids(searcher, [addr for _, addr in hits]))

    def upsert(self, chunk_id: int, text: str) -> None:
        """Index ``text`` under ``chunk_id``, replacing what that id held before, and commit."""
        self.upsert_many([(chunk_id, term_counts(text))], [text])

    def upsert_terms(self, chunk_id: int, terms: dict[str, int]) -> None:
        """Index already counted terms (see :func:`term_counts`) under ``chunk_id``, and commit."""
        self.upsert_many([(chunk_id, terms)])

    def upsert_many(
        self, items: Sequence[tuple[int, dict[str, int]]], texts: Sequence[str] | None = None
    ) -> None:
        """Index (chunk id, term counts) pairs and their texts, replacing the ids'; one commit."""
        if not items:
            return
        if texts is not None and len(texts) != len(items):
            raise ValueError(f"{len(texts)} texts for {len(items)} chunks")
        writer = self._writer()
        for n, (chunk_id, terms) in enumerate(items):
            # A delete applies only to documents added before it, so the new one survives.
            writer.delete_documents_by_term(CHUNK_ID, int(chunk_id))
            doc = tantivy.Document()
            doc.add_integer(CHUNK_ID, int(chunk_id))
            doc.add_text(TERMS, _joined(terms))
            if texts is not None:
                doc.add_bytes(TEXT, texts[n].encode("utf-8"))
            writer.add_document(doc)
        self._commit(writer)

    def remove(self, chunk_id: int) -> bool:
        """Drop a chunk and commit; answers whether it was present."""
        return self.remove_many([chunk_id]) == 1

    def remove_many(self, chunk_ids: Iterable[int]) -> int:
        """Drop chunks in one commit; answers how many were present."""
        wanted = sorted({int(c) for c in chunk_ids})
        if not wanted:
            return 0
        present = self._present(wanted)
        if present:
            writer = self._writer()
            for chunk_id in present:
                writer.delete_documents_by_term(CHUNK_ID, chunk_id)
            self._commit(writer)
        return len(present)

    def texts(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The stored texts of the given chunks that are in the index."""
        wanted = sorted({int(c) for c in chunk_ids})
        if not wanted:
            return {}
        searcher = self._index.searcher()
        query = tantivy.Query.term_set_query(self._schema, CHUNK_ID, wanted)
        addresses = [a for _, a in searcher.search(query, limit=len(wanted), count=False).hits]
        found = {}
        for chunk_id, address in zip(_chunk_ids(searcher, addresses), addresses, strict=True):
            stored = searcher.doc(address).get_first(TEXT)
            if isinstance(stored, bytes):
                found[chunk_id] = stored.decode("utf-8")
        return found

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by Tantivy's BM25, best first."""
        terms = tokenize(query)
        if not terms or k < 1:
            return []
        # A term repeated in the query counts once per occurrence, as a query term frequency.
        clauses = [
            (tantivy.Occur.Should, tantivy.Query.term_query(self._schema, TERMS, t, "freq"))
            for t in terms
        ]
        searcher = self._index.searcher()
        if searcher.num_docs == 0:
            return []
        hits = searcher.search(tantivy.Query.boolean_query(clauses), limit=k, count=False).hits
        ids = _chunk_ids(searcher, [addr for _, addr in hits])
        ranked = [(cid, float(score)) for (score, _), cid in zip(hits, ids, strict=True)]
        return sorted(ranked, key=lambda hit: (-hit[1], hit[0]))

    def _present(self, chunk_ids: list[int]) -> list[int]:
        # A search, not doc_freq: Tantivy's document frequencies still count deleted documents.
        searcher = self._index.searcher()
        query = tantivy.Query.term_set_query(self._schema, CHUNK_ID, chunk_ids)
        hits = searcher.search(query, limit=len(chunk_ids), count=False).hits
        return sorted(_chunk_ids(searcher, [addr for _, addr in hits]))

    def _writer(self) -> tantivy.IndexWriter:
        # A writer per batch rather than one held open: Tantivy allows one writer per directory
        # and holds its lock for the writer's life, which would shut out a second process.
        return self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)

    def _commit(self, writer: tantivy.IndexWriter) -> None:
        try:
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()
        self._index.reload()
