"""Malformed dataset rows are skipped with a warning and counted in every report, not fatal."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from services.client import GatewayClient
from services.evaluation import (
    AnswerResult,
    RetrievalConfig,
    answer_markdown,
    answer_table,
    load_squad,
    retrieval_markdown,
    retrieval_table,
    sample_set,
    score_answers,
    score_results,
    search_all,
)

MALFORMED = Path(__file__).resolve().parents[1] / "data" / "squad_malformed.json"
BAD_ROWS = ["empty-question", "blank-question", "no-answers", "blank-answer", "empty-context"]


def test_malformed_rows_are_skipped_warned_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="services.evaluation.datasets"):
        evalset = load_squad(MALFORMED)
    assert [q.question_id for q in evalset.questions] == ["good-1", "good-2"]
    assert [p.paragraph_id for p in evalset.paragraphs] == ["P0", "P2"]
    assert evalset.skipped == 5
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert all(f"skipping question {row}" in warned for row in BAD_ROWS)
    assert "empty question" in warned and "no answer" in warned and "empty paragraph" in warned
    assert sample_set(evalset, None, 1, seed=0).skipped == 5


def _search_gateway(request: httpx.Request) -> httpx.Response:
    """The gateway's search: 422 for an empty query (what used to end the run), else one hit."""
    query = json.loads(request.content)["query"]
    if not query.strip():
        return httpx.Response(422, json={"error": "empty query", "error_type": "validation"})
    hit = {
        "chunk_id": 1,
        "document_id": 1,
        "document_name": "squad_malformed-P0.txt",
        "position": 0,
        "text": "青岚茶园",
        "score": 0.5,
    }
    return httpx.Response(200, json={"knowledge_base": "kb", "query": query, "hits": [hit]})


def test_a_retrieval_run_over_a_set_with_malformed_rows_completes_and_reports_them() -> None:
    evalset = load_squad(MALFORMED)
    config = RetrievalConfig("hybrid", rerank=False, k=5)
    with GatewayClient("http://gw.test", transport=httpx.MockTransport(_search_gateway)) as client:
        results = search_all(client, "kb", evalset.questions, config)
    run = score_results(results, [evalset], config)
    assert run["overall"]["questions"] == 2 and run["overall"]["skipped"] == 5
    assert run["sets"][evalset.name]["skipped"] == 5
    assert run["overall"]["recall@1"] == pytest.approx(0.5)
    report = {
        "machine": "2 cores",
        "knowledge_base": "kb",
        "corpus": {evalset.name: 2},
        "questions": {evalset.name: 2},
        "questions_per_set": 500,
        "seed": 0,
        "ingestion": [],
        "runs": [run],
    }
    assert json.loads(json.dumps(run))["overall"]["skipped"] == 5
    text = retrieval_markdown(report)
    assert "Malformed rows skipped (empty question, no answer or empty paragraph): " in text
    assert f"{evalset.name} 5." in text
    console = Console(width=200, record=True)
    console.print(retrieval_table(run))
    assert "skipped" in console.export_text()


def test_answer_reports_count_the_skipped_rows() -> None:
    evalset = load_squad(MALFORMED)
    scores = {"f1": 1.0, "em": 1.0, "contains": 1.0}
    results = [AnswerResult(q, "zh", q.answers[0], scores, 1.5) for q in evalset.questions]
    report = {
        "model": "m.gguf",
        "machine": "2 cores",
        "knowledge_base": "kb",
        "per_set": 2,
        "seed": 0,
        "asked": 2,
        **score_answers(results, [evalset]),
    }
    assert report["overall"]["skipped"] == 5 and report["sets"][evalset.name]["skipped"] == 5
    text = answer_markdown(report)
    assert "| set | questions | skipped |" in text
    assert f"| {evalset.name} | 2 | 5 | 1.000 |" in text and "| all | 2 | 5 |" in text
    console = Console(width=200, record=True)
    console.print(answer_table(report))
    assert "skipped" in console.export_text()


def test_answer_reports_time_what_a_streaming_reader_waits_for() -> None:
    evalset = load_squad(MALFORMED)
    first, second = evalset.questions
    found = {"f1": 1.0, "em": 1.0, "contains": 1.0}
    missed = {"f1": 0.0, "em": 0.0, "contains": 0.0}
    results = [
        AnswerResult(first, "zh", first.answers[0], found, 4.0, None, 0.5, 2.0),
        AnswerResult(second, "zh", "文档中没有找到相关答案。", missed, 1.0, None, 0.7, 0.9, True),
    ]
    summary = score_answers(results, [evalset])["overall"]
    assert summary["not_found"] == 0.5
    assert summary["sources_s"]["p50"] == pytest.approx(0.6)
    assert summary["first_token_s"]["p50"] == pytest.approx(1.45)
    assert summary["latency_s"]["p50"] == pytest.approx(2.5)
    report = {"model": "m", "machine": "2 cores", "knowledge_base": "kb", "per_set": 2,
              "seed": 0, "asked": 2, **score_answers(results, [evalset])}  # fmt: skip
    text = answer_markdown(report)
    assert "| not found | sources p50 s | first token p50 / p95 s |" in text
    assert "| 0.500 | 0.60 | 1.4 / 1.9 | 2.5 / 3.9 |" in text
