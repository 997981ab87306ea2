"""The script of the question: Traditional Chinese questions get Traditional answers."""

from __future__ import annotations

import pytest

from services.common.script import fold, is_traditional, to_script_of


@pytest.mark.parametrize(
    ("text", "traditional"),
    [
        ("濾芯多久更換一次？", True),
        ("PP 濾芯的價格", True),
        ("滤芯多久更换一次？", False),
        ("知库支持哪些格式？", False),
        ("How often is the filter replaced?", False),
        ("", False),
    ],
)
def test_is_traditional(text: str, traditional: bool) -> None:
    assert is_traditional(text) is traditional


def test_to_script_of_follows_the_question() -> None:
    answer = "滤芯每六个月更换一次[1]。"
    assert to_script_of("濾芯多久更換一次？", answer) == "濾芯每六個月更換一次[1]。"
    assert to_script_of("滤芯多久更换一次？", answer) == answer
    assert to_script_of("How often?", answer) == answer
    assert to_script_of("濾芯多久更換一次？", "Every six months [1].") == "Every six months [1]."


def test_fold_compares_both_scripts_as_simplified_lowercase() -> None:
    assert fold("濾芯 PP 價格") == "滤芯 pp 价格"
    assert fold("Filter PRICE") == "filter price"
    assert fold("滤芯多久更换一次") == "滤芯多久更换一次"
