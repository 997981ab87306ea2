"""Retrieval at scale: the gateway's /api/v1/search against the bare engines, memory, restart.

    python -m bench.retrieval_scale [--chunks 1000000] [--baseline-chunks 100000] [--out ...]

Two runs, one after the other, each in a fresh suite: the first ``--baseline-chunks`` of the
corpus with the dense index as it was before 8-bit codes and memory-mapping (IVF-flat, read
into memory), then all ``--chunks`` with the settings as given.

Real Chinese and English sentence windows from the SQuAD-layout datasets are embedded once;
each chunk joins two of them (text: both, vector: their normalised sum), so a million chunks
cost some 40,000 embeddings (``--pieces``), not a million. Documents and chunk rows go
straight into the suite's database and the chunks through the retriever's internal add
endpoint (the journaled write path), then every question is timed through the gateway and,
right after it, through the bare engines.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

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
from bench.scale_fill import fill_suite
from bench.scale_measure import comparison, dense_kind, restart_retriever, retriever_rss_mb
from bench.suite import REPO, SuiteProcesses, suite_processes
from retriever.offline import ann_config
from services.client import GatewayClient
from services.common.retriever_client import RetrieverClient
from services.common.retriever_schemas import MAX_ITEMS_PER_REQUEST
from services.common.schemas import KnowledgeBasePublic
from services.common.settings import Settings
from services.evaluation import default_datasets_dir
from services.launcher import wait_ready

logger = logging.getLogger("bench.retrieval_scale")


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
        f"{c['chunks']:,} chunks joins a window and one of its {c['neighbours']} nearest windows "
        "(text: both; "
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


# The dense index as it was before issue #16's item 2: IVF-flat past 50k, read into memory.
BASELINE_ENV = {
    "ZHIKU_RETRIEVAL__ANN_SQ8_MIN_VECTORS": str(10**12),
    "ZHIKU_RETRIEVAL__ANN_MMAP": "0",
}


def run_once(corpus: Corpus, extra_env: dict[str, str]) -> dict[str, Any]:
    """Fill a fresh suite with ``corpus``, time every question, then restart the retriever."""
    started, load_start = time.monotonic(), os.getloadavg()[0]
    # The suite passes on no ZHIKU_* of this process but these: the retrieval settings given
    # to this run (ZHIKU_RETRIEVAL__ANN_* ...), then the run's own.
    given = {k: v for k, v in os.environ.items() if k.startswith("ZHIKU_RETRIEVAL__")}
    env = {**given, **extra_env}
    with mock.patch.dict(os.environ, env):  # restored afterwards, for the next run
        ann = ann_config(Settings().retrieval)  # what the retriever reads from the same env
    raw = RawEngines(corpus, ann)
    with (
        mock.patch.dict(os.environ),
        tempfile.TemporaryDirectory(prefix="zhiku-retrieval-scale-") as tmp,
        suite_processes(Path(tmp), env, ("retriever", "gateway", "ingestion")) as (
            suite,
            gateway,
        ),
        GatewayClient(gateway, timeout=600) as client,
    ):
        os.environ.update({k: v for k, v in suite.env.items() if k.startswith("ZHIKU_")})
        # No llm worker: search does not need one (the gateway's /readyz would wait for it).
        wait_ready(f"{suite.settings.retriever_url}/readyz", suite.procs, timeout_s=600)
        wait_ready(f"{gateway}/healthz", suite.procs, timeout_s=600)
        fill, kb = fill_suite(Path(tmp), client, corpus)
        modes, recall, rss = _measure_suite(suite, client, kb, raw, corpus.questions)
        restart_s = restart_retriever(suite)
        _measure_suite(suite, client, kb, raw, corpus.questions[:20])
        rss["after_restart"] = retriever_rss_mb(suite)
    return {
        "corpus": {
            "chunks": len(corpus.texts),
            "pieces": corpus.pieces,
            "neighbours": corpus.neighbours,
            "documents": math.ceil(len(corpus.texts) / CHUNKS_PER_DOCUMENT),
            **fill,
        },
        "dense_index": dense_kind(len(corpus.texts), ann),
        "settings": env,
        "queries": len(corpus.questions),
        "top_k": TOP_K,
        "ann_min_vectors": ann.min_vectors,
        "raw_ivf": raw.ivf,
        "modes": modes,
        "recall_at_10": recall,
        "rss_mb": rss,
        "restart_to_ready_s": restart_s,
        "adds_per_s": len(corpus.texts) / fill["index_s"],
        "seconds": time.monotonic() - started,
        # Other work on the machine slows both sides alike; this says how much there was.
        "load_average_1m": {"start": load_start, "end": os.getloadavg()[0]},
    }


def _measure_suite(
    suite: SuiteProcesses,
    client: GatewayClient,
    kb: KnowledgeBasePublic,
    raw: RawEngines,
    questions: list[str],
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    here = Settings()
    retriever = RetrieverClient(here.retriever_url, token=here.internal_token)
    try:
        modes, recall = measure(Paths(client, retriever, kb.id, kb.embedding_model, raw), questions)
    finally:
        retriever.close()
    return modes, recall, {"after_fill": retriever_rss_mb(suite)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--baseline-chunks", type=int, default=100_000, help="0: no baseline run.")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--pieces",
        type=int,
        default=0,
        help="Sentence windows embedded (0: chunks / 25, at least 6000, at most all ~15,000).",
    )
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.monotonic()
    pieces = args.pieces or max(6000, args.chunks // 25)
    corpus = build_corpus(args.datasets, args.chunks, pieces, args.queries)
    runs: dict[str, dict[str, Any]] = {}
    if 0 < args.baseline_chunks < args.chunks:
        runs["before (IVF-flat, read in)"] = run_once(
            corpus.head(args.baseline_chunks), BASELINE_ENV
        )
    runs["now"] = run_once(corpus, {})
    result = {"runs": runs, "seconds": time.monotonic() - started}
    write_results("retrieval_scale", result, report(result), args.out)
    logger.info("wrote %s", args.out / "retrieval_scale.md")


def report(result: dict[str, Any]) -> str:
    """The comparison of the runs, then each run's own table."""
    runs = result["runs"]
    lines = [
        f"# Retrieval at {max(r['corpus']['chunks'] for r in runs.values()):,} chunks",
        "",
        "Each run in a fresh suite, one after the other. RSS: the retriever process after the "
        "index was filled and every question asked, and again after a restart and 20 questions. "
        "Restart to ready: process started until its /readyz answers (embedder loaded, every "
        "index opened). Adds: chunks pushed through the internal add endpoint per second, "
        "vectors given (no embedding in it).",
        "",
        *comparison(runs),
    ]
    for label, run in runs.items():
        body = markdown(run).replace("# ", f"## {label}: ", 1)
        lines += ["", body]
    lines += ["", f"Whole benchmark {result['seconds']:.0f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
