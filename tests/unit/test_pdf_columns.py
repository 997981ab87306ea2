"""Two-column PDF pages in reading order, and the reading-order measure of the parse eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.loaders import extract_text
from ingestion.parsers.pdf_columns import Char, ordered_text
from services.common.settings import ParsingSettings
from services.evaluation.parse_corpus import (
    CJK_FONT,
    EN_MORE,
    EN_TEXT,
    EN_TITLE,
    ZH_MORE,
    ZH_TEXT,
    ZH_TITLE,
    write_corpus,
)
from services.evaluation.parse_eval import char_accuracy, order_errors

LIMITS = ParsingSettings().model_dump()
needs_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="needs fonts-noto-cjk")


def _line(text: str, left: float, top: float, width: float = 6.0) -> list[Char]:
    """One row of characters, each ``width`` points wide, 12 points high."""
    return [
        Char(ch, left + i * width, top - 12, left + (i + 1) * width, top)
        for i, ch in enumerate(text)
    ]


@needs_font
def test_chinese_two_column_page_reads_left_column_then_right(tmp_path: Path) -> None:
    [(_case, path)] = write_corpus(tmp_path, {"zh_columns.pdf"})
    text = extract_text(path, "pdf", LIMITS)
    assert text.split("\n") == [ZH_TITLE, *ZH_TEXT, *ZH_MORE]  # page number gone, lines joined


@needs_font
def test_english_two_column_page_reads_in_order_with_its_spaces(tmp_path: Path) -> None:
    [(_case, path)] = write_corpus(tmp_path, {"en_columns.pdf"})
    expected = [EN_TITLE, *EN_TEXT, *EN_MORE]
    text = extract_text(path, "pdf", LIMITS)
    assert order_errors(expected, text) == 0.0
    assert char_accuracy("".join(expected), text) >= 0.99
    assert EN_TEXT[0] in text  # words keep their spaces, wrapped lines joined


@needs_font
def test_reading_across_the_columns_counts_as_order_errors(tmp_path: Path) -> None:
    import pypdfium2

    [(_case, path)] = write_corpus(tmp_path, {"zh_columns.pdf"})
    document = pypdfium2.PdfDocument(path)
    try:
        stream_order = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    assert order_errors([ZH_TITLE, *ZH_TEXT, *ZH_MORE], stream_order) > 0.5


def test_single_column_prose_is_left_as_it_is() -> None:
    chars = [c for row in range(20) for c in _line("x" * 70, 60, 780 - row * 16)]
    assert ordered_text(chars) is None


def test_labels_beside_values_are_not_columns() -> None:
    chars = [
        c
        for row in range(12)
        for c in _line("Name" if row % 2 else "Address", 60, 780 - row * 16)
        + _line("value " * (1 + row % 3), 330, 780 - row * 16)
    ]
    assert ordered_text(chars) is None


def test_columns_are_read_by_band_under_a_title_across_them() -> None:
    rows = [_line("Title across the page", 240, 800)]
    for row in range(8):
        top = 770 - row * 16
        rows += [_line(f"L{row}" + "a" * 38, 60, top), _line(f"R{row}" + "b" * 38, 320, top)]
    chars = [c for row in rows for c in row]
    lines = (ordered_text(chars) or "").split("\n")
    assert lines[0] == "Title across the page"
    assert [line[:2] for line in lines[1:]] == [f"L{i}" for i in range(8)] + [
        f"R{i}" for i in range(8)
    ]


def test_order_errors_counts_pairs_out_of_order_or_missing() -> None:
    expected = ["alpha beta gamma", "delta epsilon", "zeta eta theta", "iota kappa"]
    assert order_errors(expected, "\n".join(expected)) == 0.0
    swapped = [expected[0], expected[2], expected[1], expected[3]]
    assert order_errors(expected, "\n".join(swapped)) == pytest.approx(1 / 3)
    assert order_errors(expected, "\n".join(expected[:3])) == pytest.approx(1 / 3)
