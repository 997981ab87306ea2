"""Retrieval quality of the two index backends on the dev pool: FAISS + Tantivy against Milvus.

    python -m bench.retrieval_backends [--questions-per-set 500]

The pool of bench.retrieval_pool (every paragraph of CMRC 2018 dev, XQuAD zh/en and DRCD dev,
one document each; a seeded sample of questions per set) is chunked as the ingestion worker
chunks it and embedded once; the same chunks and vectors go into each backend through the
retriever's own ChunkIndex, and every question is searched in each mode through the
retriever's search function (query embedded once, reused by both backends). So the figures
differ by the backend alone. A third run is the local backend with the Python jieba package
cutting the words (what the keyword index used before jieba-rs): the tokenizer's ablation.
Writes bench/results/retrieval_backends.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from numpy.typing import NDArray

from bench.report import RESULTS, machine_line, write_results
from bench.retrieval_pool import FILES
from bench.suite import REPO
from ingestion.chunking import chunk_text
from retriever import keyword_index
from retriever.backend import ChunkIndex, create_chunk_index
from retriever.keyword_index import term_counts
from retriever.service import search
from services.common.chunks import ChunkIn
from services.common.embedding import Embedder, create_embedder
from services.common.retriever_schemas import RetrieverSearchRequest
from services.common.settings import Settings
from services.evaluation import (
    EvalSet,
    RetrievalConfig,
    default_datasets_dir,
    load_squad,
    sample_set,
    score_results,
    simplified_variant,
)
from services.evaluation.retrieval_eval import QuestionResult, ranked_documents

logger = logging.getLogger("bench.retrieval_backends")

KB = 1
CONFIGS = (
    RetrievalConfig("dense", rerank=False),
    RetrievalConfig("keyword", rerank=False),
    RetrievalConfig("hybrid", rerank=False),
    RetrievalConfig("hybrid", rerank=True),
)
BACKENDS = ("local", "milvus")
PYTHON_JIEBA = "local-python-jieba"  # the ablation: same backend, words cut by Python jieba
BATCH = 2000


def _chunks(settings: Settings, sets: Sequence[EvalSet]) -> tuple[list[str], list[str]]:
    """Every paragraph's chunks, as texts and their document names, in order."""
    texts, names = [], []
    size, overlap = settings.chunking.size, settings.chunking.overlap
    for paragraph in (p for s in sets for p in s.paragraphs):
        for text in chunk_text(paragraph.text, size, overlap):
            texts.append(text)
            names.append(paragraph.filename)
    return texts, names


def _fill(index: ChunkIndex, model: str, texts: list[str], vectors: NDArray[np.float32]) -> float:
    started = time.monotonic()
    dim = vectors.shape[1]
    for start in range(0, len(texts), BATCH):
        items = [
            ChunkIn(chunk_id=i + 1, document_id=i + 1, text=texts[i], vector=vectors[i])
            for i in range(start, min(start + BATCH, len(texts)))
        ]
        index.upsert(KB, model, dim, items, [term_counts(c.text) for c in items])
    return time.monotonic() - started


@contextmanager
def _python_jieba() -> Iterator[None]:
    """The keyword analysis with the Python jieba package in place of jieba-rs, for one run."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    with mock.patch.object(keyword_index, "_cut_for_search", jieba.lcut_for_search):
        yield


class _CachedQueries:
    """The embedder with each question's vector computed once and handed to both backends."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._cache: dict[str, NDArray[np.float32]] = {}
        self.name, self.dim = embedder.name, embedder.dim

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._embedder.embed(missing), strict=True))
        return np.stack([self._cache[t] for t in texts])


def _run_backend(
    backend: str,
    data_dir: Path,
    embedder: _CachedQueries,
    texts: list[str],
    names: list[str],
    vectors: NDArray[np.float32],
    sets: list[EvalSet],
) -> dict[str, Any]:
    retrieval = {"backend": backend, "milvus_uri": str(data_dir / "milvus.db")}
    settings = Settings.model_validate({"data_dir": str(data_dir), "retrieval": retrieval})
    index = create_chunk_index(settings)
    try:
        fill_s = _fill(index, embedder.name, texts, vectors)
        logger.info("%s: %d chunks in %.0f s", backend, len(texts), fill_s)
        runs = [_evaluate(index, embedder, settings, names, sets, c) for c in CONFIGS]
    finally:
        index.close()
    return {"fill_s": fill_s, "runs": runs}


def _evaluate(
    index: ChunkIndex,
    embedder: _CachedQueries,
    settings: Settings,
    names: list[str],
    sets: list[EvalSet],
    config: RetrievalConfig,
) -> dict[str, Any]:
    results = []
    for question in (q for s in sets for q in s.questions):
        req = RetrieverSearchRequest(
            kb_id=KB,
            query=question.text,
            top_k=config.k,
            mode=config.mode,
            rerank=bool(config.rerank),
            embedding_model=embedder.name,
        )
        started = time.perf_counter()
        hits = search(index, embedder, req, settings.retrieval)
        seconds = time.perf_counter() - started
        documents = ranked_documents([names[h.chunk_id - 1] for h in hits], {})
        results.append(QuestionResult(question, documents, seconds))
    scored = score_results(results, sets, config)
    logger.info("%s: %s", scored["label"], scored["overall"])
    return scored


def markdown(result: dict[str, Any]) -> str:
    """Both backends side by side, pooled over every set but drcd-t2s."""
    local, milvus = (result["backends"][b]["runs"] for b in BACKENDS)
    lines = [
        "# Retrieval quality by index backend: FAISS + Tantivy (default) vs Milvus",
        "",
        f"The dev pool of bench.retrieval_pool ({result['chunks']:,} chunks from "
        f"{result['documents']:,} paragraphs of CMRC 2018 dev, XQuAD zh/en and DRCD dev); "
        f"{result['questions_per_set']} questions per set (seed {result['seed']}), pooled "
        "without drcd-t2s. The same chunks and vectors in each backend (Milvus through "
        "Milvus Lite), searched in this process through the retriever's search function; "
        "ms: search time per question without embedding the query (embedded once for both).",
        "",
        "| configuration | R@1 default / Milvus | MRR@10 default / Milvus | Δ R@1 | Δ MRR@10 "
        "| p50 ms default / Milvus |",
        "|---|---|---|---|---|---|",
    ]
    lines += _comparison_rows(local, milvus)
    if PYTHON_JIEBA in result["backends"]:
        lines += _tokenizer_rows(result["backends"][PYTHON_JIEBA]["runs"], local)
    runs = [r for r in (*BACKENDS, PYTHON_JIEBA) if r in result["backends"]]
    fills = ", ".join(f"{r} {result['backends'][r]['fill_s']:.0f} s" for r in runs)
    lines += [
        "",
        f"Filling (tokenising included, embedding not): {fills}. Whole run "
        f"{result['seconds']:.0f} s. Machine: {machine_line()}.",
    ]
    return "\n".join(lines)


def _tokenizer_rows(before: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """The default backend with Python jieba (before) and with jieba-rs (now)."""
    lines = [
        "",
        "Words cut by jieba-rs (`rjieba`, the default) against the Python jieba package, the same "
        "FAISS + Tantivy backend otherwise:",
        "",
        "| configuration | R@1 Python jieba / jieba-rs | MRR@10 Python jieba / jieba-rs | Δ R@1 "
        "| Δ MRR@10 | p50 ms Python jieba / jieba-rs |",
        "|---|---|---|---|---|---|",
    ]
    return lines + _comparison_rows(before, now)


def _comparison_rows(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[str]:
    """One table row per configuration: R@1, MRR@10, their change and p50 ms, first / second."""
    rows = []
    for a, b in zip(first, second, strict=True):
        x, y = a["overall"], b["overall"]
        rows.append(
            f"| {a['label']} | {x['recall@1']:.3f} / {y['recall@1']:.3f} "
            f"| {x['mrr@10']:.3f} / {y['mrr@10']:.3f} "
            f"| {y['recall@1'] - x['recall@1']:+.3f} | {y['mrr@10'] - x['mrr@10']:+.3f} "
            f"| {x['latency_ms']['p50']:.1f} / {y['latency_ms']['p50']:.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--questions-per-set", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    full = [load_squad(args.datasets / name) for name in FILES]
    sampled = [sample_set(s, None, args.questions_per_set, args.seed) for s in full]
    sets = sampled + [v for v in (simplified_variant(s) for s in sampled) if v is not None]
    settings = Settings()
    texts, names = _chunks(settings, full)
    embedder = _CachedQueries(create_embedder(settings.embedding))
    vectors = np.vstack([embedder.embed(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    embedder.embed([q.text for s in sets for q in s.questions])
    logger.info("embedded %d chunks and every question", len(texts))
    backends = {}
    for run in (*BACKENDS, PYTHON_JIEBA):
        backend = "local" if run == PYTHON_JIEBA else run
        analysis = _python_jieba() if run == PYTHON_JIEBA else nullcontext()
        with tempfile.TemporaryDirectory(prefix=f"zhiku-backends-{run}-") as tmp, analysis:
            backends[run] = _run_backend(backend, Path(tmp), embedder, texts, names, vectors, sets)
    result = {
        "chunks": len(texts),
        "documents": sum(len(s.paragraphs) for s in full),
        "questions": {s.name: len(s.questions) for s in sets},
        "questions_per_set": args.questions_per_set,
        "seed": args.seed,
        "backends": backends,
        "seconds": time.monotonic() - started,
    }
    write_results("retrieval_backends", result, markdown(result), args.out)
    logger.info("wrote %s", args.out / "retrieval_backends.md")


if __name__ == "__main__":
    main()
