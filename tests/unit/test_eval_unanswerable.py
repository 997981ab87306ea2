"""The not-found gate's questions: unanswerable ones share nothing with their knowledge base."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.client import GatewayClient
from services.evaluation.datasets import EvalSet, Paragraph, Question
from services.evaluation.gate_eval import gate_cases_for, gate_report, gate_scores
from services.evaluation.unanswerable import (
    GateRow,
    choose_gate,
    gate_cases,
    parallel_cases,
    refusal_rates,
)


def _set(name: str, texts: list[str], answers: list[str]) -> EvalSet:
    paragraphs = tuple(Paragraph(name, f"p{i}", text) for i, text in enumerate(texts))
    questions = tuple(
        Question(name, f"{name}-q{i}-{j}", f"{name} question {i}.{j}?", (answer,), p.filename)
        for i, (p, answer) in enumerate(zip(paragraphs, answers, strict=True))
        for j in range(3)
    )
    return EvalSet(name, paragraphs, questions)


@pytest.fixture
def sets() -> dict[str, EvalSet]:
    return {
        "a": _set("a", [f"甲段{i}：首都是北京城。" for i in range(20)], ["北京城"] * 20),
        # b's paragraph 0 is a's paragraph 0 word for word; paragraph 1 holds "北京城" (a's answer).
        "b": _set(
            "b",
            ["甲段0：首都是北京城。", "乙段1：这里提到北京城。"]
            + [f"乙段{i}" for i in range(2, 20)],
            ["不在甲里的答案"] * 20,
        ),
        "c": _set("c", [f"Paragraph {i} about rivers." for i in range(20)], ["river"] * 20),
    }


PAIRS = dict(answerable=[("a", "a"), ("b", "b")], unanswerable=[("a", "b"), ("b", "a"), ("c", "a")])


def test_unanswerable_questions_share_no_paragraph_or_answer_with_their_kb(
    sets: dict[str, EvalSet],
) -> None:
    cases = gate_cases(sets, per_pair=100, seed=0, **PAIRS)
    for case in cases:
        kb = sets[case.kb]
        kb_names = {p.filename for p in kb.paragraphs}
        gold = {p.filename: p.text for s in sets.values() for p in s.paragraphs}
        if case.answerable:
            assert case.question.set_name == case.kb
            assert case.question.gold_document in kb_names
            continue
        assert case.question.gold_document not in kb_names
        assert gold[case.question.gold_document] not in {p.text for p in kb.paragraphs}
        corpus = "".join(p.text for p in kb.paragraphs)
        assert not any(a in corpus for a in case.question.answers)
    # a's answer "北京城" is in b's paragraphs: no question of a is asked against b.
    assert not [c for c in cases if c.question.set_name == "a" and c.kb == "b"]
    assert len([c for c in cases if c.question.set_name == "c" and c.kb == "a"]) == 60


def test_cases_are_deterministic_per_seed(sets: dict[str, EvalSet]) -> None:
    def ids(seed: int) -> list[tuple[str, str, bool]]:
        cases = gate_cases(sets, per_pair=10, seed=seed, **PAIRS)
        return [(c.question.question_id, c.kb, c.answerable) for c in cases]

    assert ids(3) == ids(3)
    assert ids(3) != ids(4)
    assert len(ids(3)) == 10 * 4  # four pairs can give ten questions (a -> b gives none)


def test_a_pair_of_one_set_must_be_answerable(sets: dict[str, EvalSet]) -> None:
    with pytest.raises(ValueError, match="a against a"):
        gate_cases(sets, 5, 0, answerable=[], unanswerable=[("a", "a")])


def test_refusal_rates_count_signals_below_the_threshold() -> None:
    rows = refusal_rates([0.1, 0.5, 0.9, 0.9], [0.0, 0.2], [0.0, 0.5, 1.0])
    assert rows == [GateRow(0.0, 0.0, 0.0), GateRow(0.5, 0.25, 1.0), GateRow(1.0, 1.0, 1.0)]


def test_choose_gate_prefers_a_separating_threshold_else_a_safe_one() -> None:
    separating = refusal_rates([0.5] * 19 + [0.1], [0.2] * 20, [0.1, 0.3, 0.6])
    assert choose_gate(separating) == (GateRow(0.3, 0.05, 1.0), True)
    overlapping = refusal_rates([0.1 * n for n in range(100)], [0.3] * 10, [0.0, 0.15, 0.25])
    row, separates = choose_gate(overlapping)
    assert (row.threshold, separates) == (0.15, False)
    with pytest.raises(ValueError, match="2%"):
        choose_gate(refusal_rates([0.0, 0.0], [0.0], [0.5]))


def test_parallel_cases_point_at_the_translated_paragraph() -> None:
    en = _set("en", [f"Paragraph {i} about rivers." for i in range(4)], ["rivers"] * 4)
    zh = _set("zh", [f"第{i}段，关于河流。" for i in range(3)], ["河流"] * 3)
    cases = parallel_cases({"en": en, "zh": zh}, per_pair=100, seed=0, pairs=[("en", "zh")])
    assert len(cases) == 9  # paragraph p3 has no translation
    for case in cases:
        assert case.answerable and case.kb == "zh" and case.question.set_name == "en"
        paragraph = case.question.question_id.split("-q")[1].split("-")[0]
        assert case.question.gold_document == f"zh-p{paragraph}.txt"


class _FakeClient:
    """Answers each search with two hits whose best cosine is the question number / 10."""

    def __init__(self) -> None:
        self.searched: list[tuple[str, int]] = []

    def search(self, kb: str, query: str, top_k: int = 5) -> SimpleNamespace:
        self.searched.append((kb, top_k))
        best = int(query.split(" question ")[1].split(".")[0]) / 10
        return SimpleNamespace(
            hits=[SimpleNamespace(dense_score=None), SimpleNamespace(dense_score=best)]
        )


def test_the_gate_through_the_gateway_reads_the_best_cosine_per_search(
    sets: dict[str, EvalSet],
) -> None:
    named = {"cmrc": sets["a"], "xquad-zh": sets["b"]}
    renamed = {k: EvalSet(k, *_renamed(v, k)) for k, v in named.items()}
    cases = gate_cases_for(renamed, per_pair=4, seed=1)
    assert {c.group for c in cases} == {"answerable", "unanswerable"}
    client = _FakeClient()
    kb_of = {"cmrc": "g-cmrc", "xquad-zh": "g-xquad-zh"}
    scores = gate_scores(cast(GatewayClient, client), kb_of, cases, top_k=5)
    assert scores == [int(c.question.question_id.split("-q")[1].split("-")[0]) / 10 for c in cases]
    assert {kb for kb, _ in client.searched} <= set(kb_of.values())
    report = gate_report(cases, scores)
    assert report["questions"]["across languages"] == 0
    zero = report["thresholds"][0]
    assert zero["threshold"] == 0.0 and zero["answerable"] == zero["unanswerable"] == 0.0


def test_the_gate_needs_two_sets_that_do_not_answer_each_other(sets: dict[str, EvalSet]) -> None:
    with pytest.raises(ValueError, match="needs two of the sets"):
        gate_cases_for({"cmrc": sets["a"]}, per_pair=4, seed=0)


def _renamed(evalset: EvalSet, name: str) -> tuple[tuple[Paragraph, ...], tuple[Question, ...]]:
    paragraphs = tuple(replace(p, set_name=name) for p in evalset.paragraphs)
    questions = tuple(
        replace(q, set_name=name, gold_document=q.gold_document.replace(evalset.name, name, 1))
        for q in evalset.questions
    )
    return paragraphs, questions


def test_zhiku_eval_gate_refuses_a_single_set_before_the_gateway(tmp_path: Path) -> None:
    dataset = tmp_path / "cmrc2018_dev.json"
    dataset.write_text('{"data": []}')
    args = ["--gateway", "http://127.0.0.1:9", "eval", "gate", "--dataset", str(dataset)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "needs two of the sets" in result.output
