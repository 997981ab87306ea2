"""The deep-chat evaluation: joined questions drawn deterministically, on two documents each."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.evaluation.datasets import default_datasets_dir
from services.evaluation.deep_eval import DeepResult, deep_markdown, deep_report, join_questions
from services.evaluation.runner import load_sets

DATASETS = default_datasets_dir(Path(__file__).resolve().parents[2])
SETS = [DATASETS / "cmrc2018_dev.json", DATASETS / "xquad.en.json"]
pytestmark = pytest.mark.skipif(not SETS[1].exists(), reason="no shared datasets")


def test_joined_questions_are_deterministic_and_need_two_documents() -> None:
    sets = load_sets(SETS, 20, None, seed=3)
    joined = join_questions(sets, 7, seed=3)
    assert joined == join_questions(load_sets(SETS, 20, None, seed=3), 7, seed=3)
    assert len(joined) == 7 and {j.set_name for j in joined} == {"cmrc", "xquad-en"}
    uploaded = {p.filename for s in sets for p in s.paragraphs}
    for question in joined:
        first, second = question.parts
        assert first.gold_document != second.gold_document
        assert {first.gold_document, second.gold_document} <= uploaded
        assert first.text.strip() in question.text and second.text.strip() in question.text
    ids = [q.question_id for j in joined for q in j.parts]
    assert len(ids) == len(set(ids))
    assert joined[0].text.startswith("请分别回答：1. ")
    assert any(j.text.startswith("Answer both: 1. ") for j in joined)


def test_the_report_counts_replies_with_both_answers_per_mode() -> None:
    (question,) = join_questions(load_sets(SETS[1:], 10, None, seed=0), 1, seed=0)
    first, second = question.parts
    both = f"{first.answers[0]} and {second.answers[0]}."
    results = [
        DeepResult(question, "fast", first.answers[0], False, True, 1.0, 0),
        DeepResult(question, "deep", both, True, True, 3.0, 2),
    ]
    report = deep_report(results)
    assert report["modes"]["fast"]["both"] == 0.0 and report["modes"]["deep"]["both"] == 1.0
    assert report["modes"]["deep"]["mean_steps"] == 2.0
    assert report["modes"]["deep"]["latency_s"]["p50"] == pytest.approx(3.0)
    assert "| deep | 1 | 100.0% |" in deep_markdown(report)
