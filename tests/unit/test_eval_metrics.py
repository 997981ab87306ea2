"""Ranking scores through ir-measures and the CMRC / SQuAD answer scores."""

from __future__ import annotations

import math

import pytest

from services.evaluation.metrics import (
    answer_scores,
    cmrc_em,
    cmrc_f1,
    latency_ms,
    ranking_scores,
    squad_em,
    squad_f1,
)


def test_ranking_scores_count_every_question_including_those_without_hits() -> None:
    gold = {"q1": "a", "q2": "b", "q3": "c"}
    ranked = {"q1": ["a", "x"], "q2": ["x", "b"], "q3": []}
    scores = ranking_scores(gold, ranked)
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@5"] == pytest.approx(2 / 3)
    assert scores["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    # One relevant document: nDCG is 1/log2(rank + 1).
    assert scores["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 3)


def test_gold_beyond_ten_does_not_count() -> None:
    ranked = {"q": [f"d{i}" for i in range(12)]}
    scores = ranking_scores({"q": "d11"}, ranked)
    assert scores["recall@10"] == 0.0 and scores["mrr@10"] == 0.0


def test_latency_percentiles_are_in_milliseconds() -> None:
    stats = latency_ms([0.01, 0.02, 0.03, 0.04, 1.0])
    assert stats["p50"] == pytest.approx(30.0)
    assert stats["p95"] > 500.0


def test_cmrc_f1_uses_the_longest_common_substring_of_characters() -> None:
    assert cmrc_f1("北京大学", "北京") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert cmrc_f1("上海", "北京") == 0.0
    assert cmrc_em("「北京」。", "北京") == 1.0
    # Latin words and numbers count as one token each, as in the CMRC script.
    assert cmrc_f1("1998年", "1998") == pytest.approx(2 * 0.5 * 1.0 / 1.5)


def test_squad_scores_ignore_case_punctuation_and_articles() -> None:
    assert squad_em("The Eiffel Tower!", "eiffel tower") == 1.0
    assert squad_f1("in the Eiffel Tower", "Eiffel Tower") == pytest.approx(0.8)
    assert squad_f1("Paris", "London") == 0.0


def test_answer_scores_take_the_best_gold_and_detect_containment() -> None:
    zh = answer_scores("答案是：1911年武昌起义。[1]", ["武昌起义", "辛亥革命"], "zh")
    assert zh["contains"] == 1.0 and zh["em"] == 0.0 and 0.0 < zh["f1"] < 1.0
    en = answer_scores("It was built in 1889.", ["1889", "in 1889"], "en")
    assert en["contains"] == 1.0 and en["f1"] == pytest.approx(
        2 * 0.4 / 1.4
    )  # "in 1889": 2 of 5 tokens
    assert answer_scores("anything", [], "en") == {"f1": 0.0, "em": 0.0, "contains": 0.0}
