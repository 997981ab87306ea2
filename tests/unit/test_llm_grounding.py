"""The first-sentence support check that turns answers from the model's own knowledge away."""

from __future__ import annotations

from collections.abc import Iterator

from llm_worker.grounding import guard_first_sentence
from services.common.answers import NOT_FOUND_EN, NOT_FOUND_ZH, content_units, support_ratio
from services.common.settings import LLMSettings

PASSAGES_ZH = ["2023年公司营收增长了15%，主要来自云服务业务。", "员工每年有15天带薪年假。"]
SUPPORT = LLMSettings().grounding_support  # the served default
PASSAGES_EN = ["Employees get 15 days of paid leave per year.", "Revenue grew 15% in 2023."]


def test_content_units_skip_citations_and_stopwords() -> None:
    assert content_units("The capital of France is Paris [1].") == {"capital", "france", "paris"}
    assert content_units("年假15天") == {"年", "假", "年假", "15", "天"}
    assert content_units("[2]") == set()


def test_support_ratio_separates_copied_from_invented_answers() -> None:
    assert support_ratio("员工每年有15天带薪年假 [2]。", PASSAGES_ZH) == 1.0
    assert support_ratio("年假有十五天。", PASSAGES_ZH) >= 0.3
    assert support_ratio("熊猫主要吃竹子 [1]。", PASSAGES_ZH) < 0.3
    assert support_ratio("Employees get 15 days of paid leave [1].", PASSAGES_EN) == 1.0
    assert support_ratio("Hamlet was written by William Shakespeare.", PASSAGES_EN) == 0.0
    assert support_ratio("[1]", PASSAGES_EN) == 1.0


def _pieces(text: str, closed: list[bool]) -> Iterator[str]:
    try:
        for i in range(0, len(text), 3):
            yield text[i : i + 3]
    finally:
        closed.append(True)


def test_supported_answer_streams_unchanged() -> None:
    text = "员工每年有15天带薪年假 [2]。年假需提前申请。"
    closed: list[bool] = []
    assert (
        "".join(guard_first_sentence(_pieces(text, closed), PASSAGES_ZH, NOT_FOUND_ZH, SUPPORT))
        == text
    )


def test_invented_answer_becomes_not_found_and_generation_stops() -> None:
    closed: list[bool] = []
    text = "熊猫主要吃竹子 [1]。它们每天要吃很多竹子，还会吃一些水果和小动物。" * 3
    out = list(guard_first_sentence(_pieces(text, closed), PASSAGES_ZH, NOT_FOUND_ZH, SUPPORT))
    assert out == [NOT_FOUND_ZH]
    assert closed == [True]


def test_not_found_reply_passes_through() -> None:
    closed: list[bool] = []
    out = "".join(
        guard_first_sentence(_pieces(NOT_FOUND_EN, closed), PASSAGES_EN, NOT_FOUND_EN, SUPPORT)
    )
    assert out == NOT_FOUND_EN


def test_long_first_sentence_is_judged_after_the_hold_limit() -> None:
    closed: list[bool] = []
    text = "Shakespeare wrote Hamlet around 1600 while living in London " * 5
    out = list(guard_first_sentence(_pieces(text, closed), PASSAGES_EN, NOT_FOUND_EN, SUPPORT))
    assert out == [NOT_FOUND_EN]


def test_a_numbered_answer_is_judged_by_its_first_sentence_not_its_marker() -> None:
    closed: list[bool] = []
    text = "1. The employees get 15 days of paid leave [1].\n2. Revenue grew 15% [2]."
    assert (
        "".join(guard_first_sentence(_pieces(text, closed), PASSAGES_EN, NOT_FOUND_EN, SUPPORT))
        == text
    )
    invented = "1. The panda eats bamboo all day long [1].\n2. Revenue grew 15% [2]."
    out = list(guard_first_sentence(_pieces(invented, closed), PASSAGES_EN, NOT_FOUND_EN, SUPPORT))
    assert out == [NOT_FOUND_EN]


def test_a_traditional_answer_copied_from_a_simplified_passage_is_supported() -> None:
    text = "員工每年有15天帶薪年假 [2]。"
    assert support_ratio(text, PASSAGES_ZH) == 1.0
    assert (
        "".join(guard_first_sentence(_pieces(text, []), PASSAGES_ZH, NOT_FOUND_ZH, SUPPORT)) == text
    )


def test_an_answer_half_its_own_is_refused() -> None:
    # Passage words dressed around a claim of the model's own: under the default share.
    text = "公司营收增长来自海外市场的智能手机和汽车业务 [1]。"
    assert 0.3 <= support_ratio(text, PASSAGES_ZH) < SUPPORT
    assert list(guard_first_sentence(_pieces(text, []), PASSAGES_ZH, NOT_FOUND_ZH, SUPPORT)) == [
        NOT_FOUND_ZH
    ]
