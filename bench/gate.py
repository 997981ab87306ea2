"""The not-found gate calibrated: what it could read, on answerable and unanswerable questions.

    nice python -m bench.gate [--per-pair 50] [--seed 0] [--documents article]

Builds each set's knowledge base in this process (chunked as ingestion does, USE embedder), asks
questions of their own set, of its translation, and of another set (services.evaluation's
unanswerable set), ranks as the served default does, and records each signal in SIGNALS.
No language model runs. Writes bench/results/gate.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.report import RESULTS, machine_line, markdown_with_total, write_results
from bench.suite import REPO
from ingestion.chunking import chunk_text
from retriever.offline import KeywordIndex, fuse, term_counts
from retriever.rerank import ScoreFusionReranker
from services.common.answers import content_units
from services.common.chunks import ScoredChunk
from services.common.embedding import UseEmbedder
from services.common.settings import Settings
from services.evaluation import (
    EvalSet,
    GateCase,
    Paragraph,
    choose_gate,
    default_datasets_dir,
    gate_cases,
    load_squad,
    parallel_cases,
    refusal_rates,
)

logger = logging.getLogger("bench.gate")

FILES = {"cmrc": "cmrc2018_dev.json", "xquad-zh": "xquad.zh.json", "xquad-en": "xquad.en.json"}
SIGNALS = {
    "gate_dense": "best cosine among the top_k passages (grounded() today)",
    "top_dense": "best cosine in the knowledge base",
    "fused_top": "fusion reranker's score of the top passage (BM25/best + 1.5 cosine)",
    "term_cover": "idf-weighted share of the question's terms in a top_k passage (best)",
    "unit_overlap": "share of the question's content units in a top_k passage (best)",
}
GRID = [round(0.05 * n, 2) for n in range(0, 51)]  # a default is a round number
WAS = 0.25  # ZHIKU_RETRIEVAL__MIN_SCORE before this benchmark


@dataclass
class _Kb:
    """One set's paragraphs as an index: chunk texts and documents, vectors, keywords, df."""

    texts: list[str]
    documents: list[str]
    vectors: NDArray[np.float32]
    keywords: KeywordIndex
    df: Counter[str]

    @classmethod
    def build(
        cls, evalset: EvalSet, embed: Callable[[list[str]], NDArray[np.float32]], whole: bool
    ) -> _Kb:
        """``whole``: an article is one document (as users upload them); else each paragraph."""
        chunking = Settings().chunking
        documents: dict[str, list[str]] = {}
        for p in evalset.paragraphs:
            documents.setdefault(_document(p, whole), []).append(p.text)
        texts: list[str] = []
        names: list[str] = []
        for name, paragraphs in documents.items():
            chunks = chunk_text("\n\n".join(paragraphs), chunking.size, chunking.overlap)
            texts += chunks
            names += [name] * len(chunks)
        terms = [term_counts(text) for text in texts]
        keywords, df = KeywordIndex(), Counter(term for counts in terms for term in counts)
        for chunk_id, counts in enumerate(terms):
            keywords.upsert_terms(chunk_id, counts)
        return cls(texts, names, embed(texts), keywords, df)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1.0 + (len(self.texts) - df + 0.5) / (df + 0.5))


def _document(paragraph: Paragraph, whole: bool) -> str:
    return f"{paragraph.set_name}-{paragraph.article}" if whole else paragraph.filename


def _served_search(
    kb: _Kb, query: str, vector: NDArray[np.float32], top_k: int
) -> list[ScoredChunk]:
    """retriever.service.search with its defaults: hybrid, rerank on (fusion), exact cosine."""
    cosine = kb.vectors @ vector
    depth = max(top_k * 4, 20)  # the rerank candidates
    inner = max(depth * 4, 20)  # each first stage's depth for those candidates
    dense = [int(c) for c in np.argsort(-cosine, kind="stable")[:inner]]
    keyword = dict(kb.keywords.search(query, inner))
    fused = fuse([dense, list(keyword)])[:depth]
    hits = [
        ScoredChunk(
            chunk_id=c,
            document_id=0,
            score=s,
            dense_score=float(cosine[c]),
            keyword_score=keyword.get(c),
        )
        for c, s in fused
    ]
    order = ScoreFusionReranker().rerank(query, hits, {})
    by_id = {h.chunk_id: h for h in hits}
    return [by_id[c] for c in order[:top_k]]


def _signals(kb: _Kb, question: str, vector: NDArray[np.float32], top_k: int) -> dict[str, Any]:
    hits = _served_search(kb, question, vector, top_k)
    passages = [kb.texts[h.chunk_id] for h in hits]
    terms = set(term_counts(question))
    weight = sum(kb.idf(t) for t in terms) or 1.0
    units = content_units(question)
    return {
        "retrieved": sorted({kb.documents[h.chunk_id] for h in hits}),
        "gate_dense": max((h.dense_score or 0.0 for h in hits), default=0.0),
        "top_dense": float(np.max(kb.vectors @ vector)),
        "fused_top": max(ScoreFusionReranker().scores(hits), default=0.0),
        "term_cover": max(
            (sum(kb.idf(t) for t in terms & set(term_counts(p))) / weight for p in passages),
            default=0.0,
        ),
        "unit_overlap": max(
            (len(units & content_units(p)) / max(1, len(units)) for p in passages), default=0.0
        ),
    }


def measure(
    cases: list[GateCase], sets: dict[str, EvalSet], top_k: int, whole: bool
) -> list[dict[str, Any]]:
    """Each case's signals, and whether its gold paragraph's document was among the passages."""
    embedder = UseEmbedder()
    kbs = {}
    for name in sorted({c.kb for c in cases}):
        kbs[name] = _Kb.build(sets[name], embedder.embed, whole)
        logger.info("%s: %d chunks", name, len(kbs[name].texts))
    document = {p.filename: _document(p, whole) for s in sets.values() for p in s.paragraphs}
    vectors = embedder.embed([c.question.text for c in cases])
    rows = []
    for case, vector in zip(cases, vectors, strict=True):
        found = _signals(kbs[case.kb], case.question.text, vector, top_k)
        retrieved = document[case.question.gold_document] in found.pop("retrieved")
        rows.append(
            {
                "question": f"{case.question.set_name}/{case.question.question_id}",
                "kb": case.kb,
                "group": case.group,
                "gold_retrieved": retrieved if case.answerable else None,
                **{k: round(float(v), 4) for k, v in found.items()},
            }
        )
    return rows


def _by_signal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per signal: spreads, chosen threshold, table (answerable: both groups, and each apart)."""
    result = {}
    for signal in SIGNALS:
        same = [r[signal] for r in rows if r["group"] == "answerable"]
        across = [r[signal] for r in rows if r["group"] == "across languages"]
        no = [r[signal] for r in rows if r["group"] == "unanswerable"]
        table = refusal_rates(same + across, no, GRID)
        chosen, separates = choose_gate(table)
        same_rows, across_rows = refusal_rates(same, [], GRID), refusal_rates(across, [], GRID)
        gated = [
            {
                **vars(r),
                "same_language_refused": s.answerable_refused,
                "across_refused": a.answerable_refused,
            }
            for r, s, a in zip(table, same_rows, across_rows, strict=True)
        ]
        # Lexical signals cannot see across languages: how they fare within one.
        at_5 = [g for g in gated if g["same_language_refused"] <= 0.05][-1]
        result[signal] = {
            "answerable": _spread(same + across),
            "unanswerable": _spread(no),
            "chosen": vars(chosen),
            "separates": separates,
            "same_language_at_5pct": at_5,
            "table": gated,
        }
    return result


def _spread(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"p5": round(cuts[0], 3), "p50": round(statistics.median(values), 3), "p95": cuts[18]}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _markdown(result: dict[str, Any], was: float) -> list[str]:
    signals, count = result["signals"], Counter(r["group"] for r in result["questions"])
    lines = [
        "# The not-found gate",
        "",
        f"Machine: {machine_line()}. `python -m bench.gate`: {count['answerable']} answerable "
        f"questions, {count['across languages']} answerable across languages (English asked of "
        f"the Chinese translation) and {count['unanswerable']} unanswerable (seed "
        f"{result['seed']}; {', '.join(result['pairs'])}); each knowledge base a whole set, "
        f"{result['documents']}s as documents; the served default ranking (hybrid, fusion "
        "rerank, top_k 5), USE embedder, no LLM. Refused: signal below the threshold. Chosen: "
        "refusing ≥90% of unanswerable and ≤5% of answerable questions (both kinds), else "
        "(≤2%) the highest refusing ≤2% of answerable ones. Gold document among the passages: "
        f"{_pct(result['gold_retrieved'])} of same-language answerable questions.",
        "",
        "| signal | answerable p5 / p50 | unanswerable p50 / p95 | same language only, ≤5% "
        "refused: threshold, unanswerable refused | chosen | answerable refused (of them across "
        "languages) | unanswerable refused |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in signals.items():
        at5, ch = s["same_language_at_5pct"], s["chosen"]
        across = next(r["across_refused"] for r in s["table"] if r["threshold"] == ch["threshold"])
        lines.append(
            f"| {name} | {s['answerable']['p5']:.3f} / {s['answerable']['p50']:.3f} | "
            f"{s['unanswerable']['p50']:.3f} / {s['unanswerable']['p95']:.3f} | "
            f"{at5['threshold']:.2f}, {_pct(at5['unanswerable_refused'])} | "
            f"{ch['threshold']:.2f}{'' if s['separates'] else ' (≤2%)'} | "
            f"{_pct(ch['answerable_refused'])} ({_pct(across)}) | "
            f"{_pct(ch['unanswerable_refused'])} |"
        )
    lines += ["", "Signals: " + "; ".join(f"`{k}`: {v}" for k, v in SIGNALS.items()) + ".", ""]
    return lines + _threshold_table(signals["gate_dense"]["table"], was, result["min_score"])


def _threshold_table(table: list[dict[str, Any]], was: float, now: float) -> list[str]:
    lines = [
        "`gate_dense` by threshold (ZHIKU_RETRIEVAL__MIN_SCORE):",
        "",
        "| threshold | answerable refused | same language | across languages | unanswerable |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        t = row["threshold"]
        mark = " (the default)" if math.isclose(t, now) else ""
        mark += " (the default before)" if math.isclose(t, was) and not mark else ""
        if t <= 0.5 and (round(t * 100) % 5 == 0 or mark):
            lines.append(
                f"| {t:.2f}{mark} | {_pct(row['answerable_refused'])} | "
                f"{_pct(row['same_language_refused'])} | {_pct(row['across_refused'])} | "
                f"{_pct(row['unanswerable_refused'])} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-pair", type=int, default=50, help="Questions per set pair.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--documents", choices=("article", "paragraph"), default="article")
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.monotonic()
    sets = {name: load_squad(args.datasets / file, name) for name, file in FILES.items()}
    cases = gate_cases(sets, args.per_pair, args.seed)
    cases += parallel_cases(sets, args.per_pair, args.seed)
    retrieval = Settings().retrieval
    rows = measure(cases, sets, retrieval.top_k, args.documents == "article")
    found = [r["gold_retrieved"] for r in rows if r["group"] == "answerable"]
    result: dict[str, Any] = {
        "seed": args.seed,
        "documents": args.documents,
        "top_k": retrieval.top_k,
        "min_score": retrieval.min_score,
        "pairs": sorted({f"{r['question'].split('/')[0]} -> {r['kb']}" for r in rows}),
        "gold_retrieved": statistics.mean(found),
        "signals": _by_signal(rows),
        "questions": rows,
    }
    md = _markdown(result, WAS)
    write_results("gate", result, markdown_with_total(md, time.monotonic() - started), args.out)


if __name__ == "__main__":
    main()
