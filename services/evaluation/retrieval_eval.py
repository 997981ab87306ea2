"""Run every question through POST /api/v1/search and score the ranked documents."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.client import GatewayClient, GatewayError
from services.common.schemas import SearchMode, SearchResponse
from services.evaluation.datasets import EvalSet, Question
from services.evaluation.metrics import latency_ms, ranking_scores

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int], None]
OVERLOAD_RETRIES = 120


@dataclass(frozen=True)
class RetrievalConfig:
    """One way of searching: mode, rerank and how many chunks to look at."""

    mode: SearchMode = "hybrid"
    rerank: bool | None = None  # None: the gateway's configured default
    k: int = 10

    @property
    def label(self) -> str:
        if self.rerank is None:
            return f"{self.mode} (default rerank)"
        return f"{self.mode}+rerank" if self.rerank else self.mode


@dataclass
class QuestionResult:
    """The documents ranked for one question and how long the search took."""

    question: Question
    documents: list[str]
    seconds: float


def ranked_documents(hit_names: Sequence[str], aliases: Mapping[str, str]) -> list[str]:
    """Documents in order of their first chunk among the hits (a document counts once)."""
    return list(dict.fromkeys(aliases.get(name, name) for name in hit_names))


def search_all(
    client: GatewayClient,
    kb: str,
    questions: Sequence[Question],
    config: RetrievalConfig,
    aliases: Mapping[str, str] | None = None,
    progress: ProgressFn | None = None,
) -> list[QuestionResult]:
    """Search each question once, in order, timing each request from the client's side."""
    results = []
    for question in questions:
        response, seconds = _timed_search(client, kb, question.text, config)
        names = [hit.document_name for hit in response.hits]
        results.append(QuestionResult(question, ranked_documents(names, aliases or {}), seconds))
        if progress:
            progress(1)
    return results


def _timed_search(
    client: GatewayClient, kb: str, query: str, config: RetrievalConfig
) -> tuple[SearchResponse, float]:
    """One search and its duration; a rate-limited request is retried and not timed."""
    for attempt in range(OVERLOAD_RETRIES + 1):
        started = time.perf_counter()
        try:
            response = client.search(kb, query, config.k, config.mode, config.rerank)
        except GatewayError as err:
            if err.error_type != "overloaded" or attempt == OVERLOAD_RETRIES:
                raise
            time.sleep(1.0)
            continue
        return response, time.perf_counter() - started
    raise AssertionError("unreachable")


def summarize(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Ranking scores and latency of a group of questions."""
    gold = {_qid(r.question): r.question.gold_document for r in results}
    ranked = {_qid(r.question): r.documents for r in results}
    return {
        "questions": len(results),
        **ranking_scores(gold, ranked),
        "latency_ms": latency_ms([r.seconds for r in results]),
    }


def score_results(
    results: Sequence[QuestionResult], sets: Sequence[EvalSet], config: RetrievalConfig
) -> dict[str, Any]:
    """Scores per set and over all questions of the pool (each question weighs the same).

    ``skipped``: the malformed rows the dataset files left out (see load_squad).
    """
    per_set = {
        s.name: {
            **summarize([r for r in results if r.question.set_name == s.name]),
            "skipped": s.skipped,
        }
        for s in sets
    }
    pooled = [r for r in results if not r.question.set_name.endswith("-t2s")]
    return {
        "config": {"mode": config.mode, "rerank": config.rerank, "k": config.k},
        "label": config.label,
        "overall": {**summarize(pooled), "skipped": sum(s.skipped for s in sets)},
        "sets": per_set,
    }


def _qid(question: Question) -> str:
    return f"{question.set_name}/{question.question_id}"
