"""Choosing the prompt's passage text: sentences, budget, order, neighbours, duplicates."""

from __future__ import annotations

import pytest

from llm_worker.context import ELISION, MAX_SENTENCE_CHARS, select_context, split_sentences
from llm_worker.prompts import format_passages
from services.common.generation_schemas import ContextPassage


def _chars(text: str) -> int:
    """A stand-in tokenizer: one token per character (the real one is the model's)."""
    return len(text)


def _passage(index: int, text: str, name: str = "doc.txt") -> ContextPassage:
    return ContextPassage(index=index, document_name=name, text=text)


ENGLISH = (
    "The museum opened in 1901. It was designed by Ada Brown. "
    "The east wing holds the coin collection. Entry is free on Sundays. "
    "The cafe closes at five."
)
CHINESE = "星河公司成立于 2001 年。总部位于杭州。公司有三百名员工！客服电话是 400-800-1234。"


def test_english_sentences_split_at_stops_and_join_back() -> None:
    parts = split_sentences(ENGLISH)
    assert [p.strip() for p in parts] == [
        "The museum opened in 1901.",
        "It was designed by Ada Brown.",
        "The east wing holds the coin collection.",
        "Entry is free on Sundays.",
        "The cafe closes at five.",
    ]
    assert "".join(parts) == ENGLISH


def test_chinese_sentences_split_at_full_width_stops() -> None:
    parts = split_sentences(CHINESE)
    assert parts == [
        "星河公司成立于 2001 年。",
        "总部位于杭州。",
        "公司有三百名员工！",
        "客服电话是 400-800-1234。",
    ]


def test_decimal_points_and_closing_quotes_stay_inside_a_sentence() -> None:
    text = "Version 3.5 shipped. He said “done.” Then left.\n第二行"
    assert [p.strip() for p in split_sentences(text)] == [
        "Version 3.5 shipped.",
        "He said “done.”",
        "Then left.",
        "第二行",
    ]


def test_a_passage_without_sentence_end_is_cut_into_short_parts() -> None:
    text = "甲乙丙丁，" * 30 + "无标点" * 100
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert all(len(p) <= MAX_SENTENCE_CHARS for p in parts)
    assert len(parts) > 2
    assert parts[0].endswith("，")  # broken after a clause while there are clauses


def test_budget_zero_keeps_the_passages_whole() -> None:
    passages = [_passage(1, ENGLISH)]
    assert select_context("coin collection?", passages, 0, _chars) == passages


@pytest.mark.parametrize("budget", [120, 180, 260, 400])
def test_the_fenced_text_stays_within_the_budget(budget: int) -> None:
    passages = [_passage(1, ENGLISH), _passage(2, CHINESE, "手册.txt"), _passage(3, ENGLISH[::-1])]
    chosen = select_context("Where is the coin collection?", passages, budget, _chars)
    assert chosen
    assert _chars(format_passages(chosen)) <= budget


def test_best_sentence_comes_with_its_neighbours_in_document_order() -> None:
    passages = [_passage(4, ENGLISH)]
    header = _chars(format_passages([_passage(4, "")]))
    three = len(
        "It was designed by Ada Brown. The east wing holds the coin collection. Entry is free"
    )
    chosen = select_context(
        "Which wing holds the coin collection?", passages, header + three + 20, _chars
    )
    assert chosen == [
        _passage(
            4,
            "It was designed by Ada Brown. The east wing holds the coin collection. "
            "Entry is free on Sundays.",
        )
    ]


def test_gaps_between_chosen_sentences_are_marked() -> None:
    text = "Alpha one. Beta two. Gamma three. Delta four. Epsilon five. Zeta six. Eta seven."
    passages = [_passage(1, text)]
    header = _chars(format_passages([_passage(1, "")]))
    chosen = select_context("alpha and eta?", passages, header + 50, _chars)
    assert chosen[0].text == f"Alpha one. Beta two.{ELISION}Zeta six. Eta seven."


def test_passages_keep_their_index_and_rank_order_and_unhelpful_ones_drop_out() -> None:
    passages = [
        _passage(1, "The cafe closes at five. Parking is free."),
        _passage(2, "Unrelated words about weather. Rain falls often here."),
        _passage(3, "The coin collection is in the east wing."),
    ]
    chosen = select_context(
        "Where is the coin collection? When does the cafe close?", passages, 240, _chars
    )
    assert [p.index for p in chosen] == [1, 3]
    assert chosen[1].text == "The coin collection is in the east wing."


def test_repeated_sentences_of_overlapping_chunks_appear_once() -> None:
    passages = [
        _passage(1, "客服电话是 400-800-1234。工作日接听。"),
        _passage(2, "工作日接听。 周末不接听。"),
    ]
    chosen = select_context("客服电话什么时候接听？", passages, 1000, _chars)
    texts = " ".join(p.text for p in chosen)
    assert texts.count("工作日接听") == 1
    assert [p.index for p in chosen] == [1, 2]
    assert chosen[1].text == "周末不接听。"


def test_everything_fits_under_a_large_budget() -> None:
    passages = [_passage(1, ENGLISH), _passage(2, CHINESE)]
    chosen = select_context("anything", passages, 10_000, _chars)
    assert [p.text for p in chosen] == [ENGLISH, CHINESE]


def test_a_budget_below_one_sentence_still_gives_the_best_sentence() -> None:
    passages = [_passage(1, ENGLISH)]
    chosen = select_context("coin collection", passages, 5, _chars)
    assert chosen == [_passage(1, "The east wing holds the coin collection.")]
