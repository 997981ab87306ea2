"""Search latency at 100k chunks: the gateway's /api/v1/search against the bare engines in-process.

    python -m bench.retrieval_scale [--chunks 100000] [--queries 200] [--out bench/results]

Real Chinese and English sentence windows from the SQuAD-layout datasets are embedded once;
each chunk joins two of them (text: both, vector: their normalised sum), so 100k chunks cost
only a few thousand embeddings. Documents and chunk rows go straight into the suite's database
and the chunks through the retriever's internal add endpoint (the journaled write path), then
every question is timed through the gateway and, right after it, through the bare engines.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import create_engine, insert

from bench.report import RESULTS, machine_line, percentiles, write_results
from bench.suite import REPO, running_suite
from retriever.offline import (
    AnnConfig,
    FusedHit,
    KeywordIndex,
    ann_config,
    fuse,
    offline_reranker,
    rerank_hits,
    term_counts,
)
from services.client import GatewayClient
from services.common.chunks import ChunkIn
from services.common.embedding import UseEmbedder
from services.common.models import Chunk, Document
from services.common.retriever_client import RetrieverClient
from services.common.retriever_schemas import MAX_ITEMS_PER_REQUEST
from services.common.schemas import KnowledgeBasePublic
from services.common.settings import Settings
from services.evaluation import default_datasets_dir, load_squad

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
    pairs = _related_pairs(rng, piece_vectors, n_chunks)
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
        texts, vectors.astype(np.float32), terms, [questions[i] for i in order], len(pieces)
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
        for chunk_id, terms in enumerate(corpus.terms, start=1):
            self.keywords.upsert_terms(chunk_id, terms)
        logger.info("raw keyword index built in %.0f s", time.monotonic() - started)

    def _ivf(self, vectors: NDArray[np.float32], ann: AnnConfig) -> faiss.IndexIVFFlat:
        # The parameters the retriever's IVF uses (retriever.vector_index), in plain faiss.
        nlist = ann.nlist(len(vectors))
        dim = vectors.shape[1]
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = ann.train_iterations
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


def fill_suite(
    data_dir: Path, client: GatewayClient, corpus: Corpus
) -> tuple[dict[str, float], KnowledgeBasePublic]:
    """Create the knowledge base, bulk-insert its rows, push every chunk to the retriever."""
    kb = client.create_knowledge_base(KB, "bench.retrieval_scale")
    _wait_for_reconciliation(data_dir / "logs" / "ingestion.log")
    settings = Settings()
    started = time.monotonic()
    engine = create_engine(settings.sqlalchemy_url)
    n_docs = math.ceil(len(corpus.texts) / CHUNKS_PER_DOCUMENT)
    with engine.begin() as conn:
        conn.execute(insert(Document), [_document_row(kb.id, n) for n in range(1, n_docs + 1)])
        conn.execute(insert(Chunk), [_chunk_row(kb.id, i, t) for i, t in enumerate(corpus.texts)])
    engine.dispose()
    rows_s = time.monotonic() - started
    started = time.monotonic()
    # Two requests in flight: one is parsed and tokenised while the other holds the index lock.
    with ThreadPoolExecutor(max_workers=2) as pool:
        starts = range(0, len(corpus.texts), MAX_ITEMS_PER_REQUEST)
        for total in pool.map(lambda start: _push(settings, kb, corpus, start), starts):
            logger.info("indexed up to %d chunks (%.0f s)", total, time.monotonic() - started)
    return {"rows_s": rows_s, "index_s": time.monotonic() - started}, kb


def _push(settings: Settings, kb: KnowledgeBasePublic, corpus: Corpus, start: int) -> int:
    end = min(start + MAX_ITEMS_PER_REQUEST, len(corpus.texts))
    items = [
        ChunkIn(
            chunk_id=i + 1,
            document_id=i // CHUNKS_PER_DOCUMENT + 1,
            text=corpus.texts[i],
            vector=corpus.vectors[i],
        )
        for i in range(start, end)
    ]
    retriever = RetrieverClient(
        settings.retriever_url, timeout_s=600, token=settings.internal_token
    )
    try:
        return retriever.add(kb.id, kb.embedding_model, kb.embedding_dim, items)
    finally:
        retriever.close()


def _document_row(kb_id: int, n: int) -> dict[str, Any]:
    return {
        "id": n,
        "knowledge_base_id": kb_id,
        "filename": f"scale-{n:05d}.txt",
        "content_type": "text/plain",
        "size_bytes": 0,
        "sha256": f"{n:064x}",
        "storage_path": "",
        "status": "ready",
        "chunk_count": CHUNKS_PER_DOCUMENT,
    }


def _chunk_row(kb_id: int, i: int, text: str) -> dict[str, Any]:
    document = i // CHUNKS_PER_DOCUMENT + 1
    position = i % CHUNKS_PER_DOCUMENT
    return {
        "id": i + 1,
        "document_id": document,
        "knowledge_base_id": kb_id,
        "position": position,
        "text": text,
    }


def _wait_for_reconciliation(log: Path, timeout_s: float = 300) -> None:
    # Rows written before the worker's start-up reconciliation could be "re-embedded" by it.
    deadline = time.monotonic() + timeout_s
    while "start-up reconciliation" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no start-up reconciliation in {log} after {timeout_s:.0f} s")
        time.sleep(0.5)


@dataclass
class Paths:
    """The three ways a question is searched: gateway, retriever service alone, raw engines."""

    client: GatewayClient
    retriever: RetrieverClient
    kb_id: int
    model: str
    raw: RawEngines

    def timed(self, question: str, mode: str, rerank: bool) -> tuple[list[float], set[int]]:
        """Latency (ms) of each path, and the gateway's chunk ids."""
        hits, gateway = _timed(self.client.search, KB, question, TOP_K, mode, rerank)
        args = (self.kb_id, question, TOP_K, self.model, mode, rerank)
        _, service = _timed(self.retriever.search, *args)
        _, raw = _timed(self.raw.search, question, mode, rerank)
        return [gateway, service, raw], {h.chunk_id for h in hits.hits}


def measure(paths: Paths, questions: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    """Each question through every path in every mode (interleaved, so load drifts hit all
    alike); and the dense recall@10 of the gateway and of the raw IVF against exact search."""
    for question in questions[:5]:  # warm every path
        for mode, rerank in MODES.values():
            paths.timed(question, mode, rerank)
    times: dict[str, list[list[float]]] = {label: [] for label in MODES}
    served_recall, raw_recall = [], []
    for question in questions:
        for label, (mode, rerank) in MODES.items():
            elapsed, ids = paths.timed(question, mode, rerank)
            times[label].append(elapsed)
            if label == "dense":
                exact = _exact_ids(paths.raw, question)
                served_recall.append(len(exact & ids) / TOP_K)
                raw_recall.append(len(exact & set(paths.raw.search(question, "dense", False))))
    results: dict[str, Any] = {}
    for label, rows in times.items():
        gateway, service, raw = (percentiles([row[i] for row in rows]) for i in range(3))
        results[label] = {
            "gateway_ms": gateway,
            "retriever_ms": service,
            "raw_ms": raw,
            "ratio_p50": gateway["p50"] / raw["p50"],
            "ratio_p95": gateway["p95"] / raw["p95"],
        }
        logger.info("%s: %s", label, results[label])
    recall = {"served": float(np.mean(served_recall)), "raw": float(np.mean(raw_recall)) / TOP_K}
    return results, recall


def _timed(call: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call(*args)
    return value, (time.perf_counter() - started) * 1000


def _exact_ids(raw: RawEngines, question: str) -> set[int]:
    query = raw.embedder.embed([question])[0]
    _, ids = raw.exact.search(query.reshape(1, -1), TOP_K)
    return {int(i) + 1 for i in ids[0] if i >= 0}


def markdown(result: dict[str, Any]) -> str:
    """The summary table."""
    c, ivf, load = result["corpus"], result["raw_ivf"], result["load_average_1m"]
    lines = [
        f"# Retrieval at {c['chunks']:,} chunks: gateway vs the bare engines",
        "",
        f"{result['queries']} real questions (CMRC 2018, DRCD, XQuAD zh/en), top_k {TOP_K}, "
        "one client, sequential; p50/p95 in ms. Gateway: POST /api/v1/search (HTTP to the "
        "gateway, HTTP to the retriever, chunk rows resolved in SQLite). Raw, in this process: "
        "the USE embedder's encode of the query + plain faiss (the same IVF parameters as the "
        "retriever) for dense; jieba tokenising + BM25 of our `KeywordIndex` for keywords "
        "(no maintained BM25 library supports incremental updates, see retriever.keyword_index); "
        "both + RRF for hybrid, + the fusion reranker's formula for rerank. Retriever alone: "
        "POST /internal/search straight to the retriever service. Ratio: gateway / raw.",
        "",
        "| mode | gateway p50 / p95 | retriever alone p50 / p95 | raw p50 / p95 | ratio p50 | "
        "ratio p95 |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in result["modes"].items():
        g, s, r = row["gateway_ms"], row["retriever_ms"], row["raw_ms"]
        lines.append(
            f"| {label} | {g['p50']:.1f} / {g['p95']:.1f} | {s['p50']:.1f} / {s['p95']:.1f} "
            f"| {r['p50']:.1f} / {r['p95']:.1f} | {row['ratio_p50']:.2f} | {row['ratio_p95']:.2f} |"
        )
    recall = result["recall_at_10"]
    lines += [
        "",
        f"Dense recall@10 against exact search (IndexFlatIP): served by the gateway "
        f"{recall['served']:.3f}, raw IVF {recall['raw']:.3f} (IVF: {ivf.get('nlist', '-')} lists, "
        f"nprobe {ivf.get('nprobe', '-')}, {result['ann_min_vectors']:,}+ vectors).",
        "",
        f"Corpus: {c['pieces']:,} sentence windows (40-160 characters) embedded; each of the "
        f"{c['chunks']:,} chunks joins a window and one of its 64 nearest windows (text: both; "
        "vector: the normalised sum of theirs), every pair distinct. Related pairs, because a "
        "real chunk is about one thing: random pairs would put every chunk between two "
        "unrelated topics, which no clustering index (and no real corpus) looks like. "
        f"{c['documents']:,} documents of {CHUNKS_PER_DOCUMENT} chunks. Rows bulk-inserted into "
        f"the suite's SQLite ({c['rows_s']:.0f} s); chunks pushed through the retriever's "
        f"internal add endpoint in batches of {MAX_ITEMS_PER_REQUEST:,}, two in flight "
        f"({c['index_s']:.0f} s, "
        f"journaled). Whole run {result['seconds']:.0f} s; 1-minute load average "
        f"{load['start']:.1f} at the start, {load['end']:.1f} at the end.",
        "",
        f"Machine: {machine_line()}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pieces", type=int, default=6000, help="Sentence windows embedded.")
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started, load_start = time.monotonic(), os.getloadavg()[0]
    corpus = build_corpus(args.datasets, args.chunks, args.pieces, args.queries)
    # The retriever's settings, so ZHIKU_RETRIEVAL__ANN_* given to this run reach both sides.
    retrieval = Settings().retrieval
    ann = ann_config(retrieval)
    raw = RawEngines(corpus, ann)
    with tempfile.TemporaryDirectory(prefix="zhiku-retrieval-scale-") as tmp:
        data_dir = Path(tmp)
        with running_suite(data_dir) as gateway, GatewayClient(gateway, timeout=600) as client:
            fill, kb = fill_suite(data_dir, client, corpus)
            here = Settings()
            retriever = RetrieverClient(here.retriever_url, token=here.internal_token)
            paths = Paths(client, retriever, kb.id, kb.embedding_model, raw)
            modes, recall = measure(paths, corpus.questions)
            retriever.close()
    result = {
        "corpus": {
            "chunks": len(corpus.texts),
            "pieces": corpus.pieces,
            "documents": math.ceil(len(corpus.texts) / CHUNKS_PER_DOCUMENT),
            **fill,
        },
        "queries": len(corpus.questions),
        "top_k": TOP_K,
        "ann_min_vectors": ann.min_vectors,
        "raw_ivf": raw.ivf,
        "modes": modes,
        "recall_at_10": recall,
        "seconds": time.monotonic() - started,
        # Other work on the machine slows both sides alike; this says how much there was.
        "load_average_1m": {"start": load_start, "end": os.getloadavg()[0]},
    }
    write_results("retrieval_scale", result, markdown(result), args.out)
    logger.info("wrote %s", args.out / "retrieval_scale.md")


if __name__ == "__main__":
    main()
