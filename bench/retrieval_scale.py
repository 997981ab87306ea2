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
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, insert

from bench.report import RESULTS, machine_line, percentiles, write_results
from bench.scale_corpus import (
    CHUNKS_PER_DOCUMENT,
    KB,
    MODES,
    TOP_K,
    Corpus,
    RawEngines,
    build_corpus,
)
from bench.suite import REPO, running_suite
from retriever.offline import (
    ann_config,
)
from services.client import GatewayClient
from services.common.chunks import ChunkIn
from services.common.models import Chunk, Document
from services.common.retriever_client import RetrieverClient
from services.common.retriever_schemas import MAX_ITEMS_PER_REQUEST
from services.common.schemas import KnowledgeBasePublic
from services.common.settings import Settings
from services.evaluation import default_datasets_dir

logger = logging.getLogger("bench.retrieval_scale")


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
        "retriever) for dense; jieba tokenising + Tantivy's BM25 (our `KeywordIndex`) for "
        "keywords; "
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
