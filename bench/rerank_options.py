"""Offline rerankers compared in-process on the pooled index, on questions kept apart.

    python -m bench.rerank_options      # after bench.retrieval_pool has filled data/bench-pool

Reads the pooled knowledge base's index and database as they are (no server), takes 150
questions per set that are NOT in the benchmark's sample, and ranks them by: dense, keyword,
RRF (hybrid), and RRF's top 40 rescored by each offline reranker. This is where the fusion
reranker's alpha was chosen; writes bench/results/rerank_options.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.retrieval_pool import FILES, RESULTS
from bench.suite import REPO
from retriever.offline import (
    FusedHit,
    Ranking,
    Reranker,
    SavedIndex,
    fuse,
    offline_reranker,
    rerank_hits,
)
from services.common.embedding import UseEmbedder
from services.evaluation import (
    Question,
    default_datasets_dir,
    load_squad,
    ranking_scores,
    sample_set,
)

DEPTH = 40
Ranker = Callable[[Question, Any, Ranking, Ranking], list[int]]


def _dev_questions(datasets: Path, per_set: int) -> list[Question]:
    picked: list[Question] = []
    for name in FILES:
        full = load_squad(datasets / name)
        test = {q.question_id for q in sample_set(full, None, 500, 0).questions}
        rest = [q for q in full.questions if q.question_id not in test]
        picked += random.Random(7).sample(rest, per_set)
    return picked


def _evaluate(rows: list[Any], rank: Ranker, doc_name: Callable[[int], str]) -> dict[str, float]:
    gold, ranked = {}, {}
    started = time.perf_counter()
    for question, vector, dense, keyword in rows:
        qid = f"{question.set_name}/{question.question_id}"
        gold[qid] = question.gold_document
        chunks = rank(question, vector, dense, keyword)
        ranked[qid] = list(dict.fromkeys(doc_name(c) for c in chunks[:10]))
    scores = ranking_scores(gold, ranked)
    ms = (time.perf_counter() - started) * 1000 / max(1, len(rows))
    return {**{k: round(scores[k], 4) for k in ("recall@1", "recall@5", "mrr@10")}, "ms": ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-pool")
    parser.add_argument("--per-set", type=int, default=150)
    args = parser.parse_args()
    kb = SavedIndex.load(args.data_dir / "indexes" / "1")
    assert kb is not None, "run bench.retrieval_pool first"
    db = sqlite3.connect(args.data_dir / "zhiku.db")
    names = dict(db.execute("SELECT id, filename FROM documents").fetchall())
    questions = _dev_questions(default_datasets_dir(REPO), args.per_set)
    vectors = UseEmbedder().embed([q.text for q in questions])
    rows = [
        (q, v, kb.dense(v, DEPTH), kb.keyword(q.text, DEPTH))
        for q, v in zip(questions, vectors, strict=True)
    ]

    def fused_scores(dense: Ranking, keyword: Ranking) -> Ranking:
        return fuse([[c for c, _ in dense], [c for c, _ in keyword]])[:DEPTH]

    def fused(dense: Ranking, keyword: Ranking) -> list[int]:
        return [c for c, _ in fused_scores(dense, keyword)]

    def reranked(reranker: Reranker) -> Ranker:
        def rank(q: Question, v: Any, dense: Ranking, keyword: Ranking) -> list[int]:
            ranked = fused_scores(dense, keyword)
            ids = [c for c, _ in ranked]
            cos, bm25 = kb.similarity(v, ids), dict(keyword)
            hits = [
                FusedHit(c, kb.document_of(c), score, cos.get(c), bm25.get(c))
                for c, score in ranked
            ]
            return rerank_hits(reranker, q.text, hits, kb.texts(ids) if reranker.needs_text else {})

        return rank

    rankers: dict[str, Ranker] = {
        "dense": lambda q, v, d, k: [c for c, _ in d],
        "keyword": lambda q, v, d, k: [c for c, _ in k],
        "hybrid (RRF)": lambda q, v, d, k: fused(d, k),
    }
    for alpha in (0.5, 1.0, 1.5, 2.0, 3.0):
        rankers[f"hybrid+fusion alpha={alpha}"] = reranked(offline_reranker("fusion", alpha))
    rankers["hybrid+lexical"] = reranked(offline_reranker("lexical"))
    rankers["hybrid+e5"] = reranked(offline_reranker("e5"))

    def doc_name(chunk: int) -> str:
        return str(names[kb.document_of(chunk)])

    results = {}
    for label, rank in rankers.items():
        results[label] = _evaluate(rows, rank, doc_name)
        print(label, results[label], flush=True)
    payload = {"questions": len(rows), "per_set": args.per_set, "depth": DEPTH, "results": results}
    (RESULTS / "rerank_options.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
