from services.common.answers import (
    NOT_FOUND_EN,
    NOT_FOUND_ZH,
    attribute,
    best_quote,
    check_answer,
    cited_indexes,
    claims,
    not_found_message,
    support_ratio,
)

PASSAGES = [
    "天工X7 整机保修期为三年，自购买之日起计算。",
    "PP 棉滤芯每 180 天更换一次。反渗透膜滤芯每 730 天更换一次。",
    "The observatory was founded in 1987 by four universities.",
]


def test_not_found_follows_the_question_language() -> None:
    assert not_found_message("滤芯多久换？") == NOT_FOUND_ZH
    assert not_found_message("When was it founded?") == NOT_FOUND_EN
    assert not_found_message("What does 知库 mean?") == NOT_FOUND_ZH


def test_cited_indexes_are_distinct_and_ordered() -> None:
    assert cited_indexes("A [2], B [1] and again [2]. Year [10].") == [2, 1, 10]


def test_explicit_markers_win_and_out_of_range_ones_are_dropped() -> None:
    assert attribute("保修期为三年 [1] [7]", PASSAGES) == {1: 1}


def test_an_answer_without_markers_is_attributed_to_its_support() -> None:
    assert attribute("PP 棉滤芯每 180 天更换一次。", PASSAGES) == {2: 2}
    assert attribute("It was founded in 1987.", PASSAGES) == {3: 3}


def test_an_unsupported_answer_gets_no_citation() -> None:
    assert attribute("火星咖啡馆的名字叫红色星球。", PASSAGES) == {}
    assert support_ratio("", PASSAGES) == 1.0  # nothing to check


def test_best_quote_is_the_sentence_that_answers() -> None:
    assert best_quote("反渗透膜 730 天更换", PASSAGES[1]) == "反渗透膜滤芯每 730 天更换一次。"


def test_check_marks_unsupported_sentences_and_unknown_markers() -> None:
    check = check_answer("PP 棉滤芯每 180 天更换一次 [2]。熊猫喜欢吃竹子 [9]。", PASSAGES)
    assert [s.supported for s in check.sentences] == [True, False]
    assert check.sentences[0].citations == [2]
    assert check.unknown_markers == [9]
    assert check.unsupported == 1


def test_check_uses_all_passages_for_a_sentence_without_marker() -> None:
    check = check_answer("The observatory was founded in 1987.", PASSAGES)
    assert check.sentences[0].supported
    assert check.unsupported == 0


def test_a_wrongly_numbered_marker_points_at_the_passage_that_backs_it() -> None:
    answer = "PP 棉滤芯每 180 天更换一次 [2]。整机保修期为三年 [1]。"
    assert attribute(answer, PASSAGES) == {2: 2, 1: 1}
    wrong = "PP 棉滤芯每 180 天更换一次。 [3]"
    assert attribute(wrong, PASSAGES) == {3: 2}
    check = check_answer(wrong, PASSAGES)
    assert check.remapped == {3: 2}
    assert check.sentences[0].citations == [3] and check.sentences[0].supported


def test_a_marker_after_the_full_stop_belongs_to_its_sentence() -> None:
    assert claims("售后热线为 400-820-7788。 [4] 第二句。") == [
        ("售后热线为 400-820-7788。 [4]", [4]),
        ("第二句。", []),
    ]
