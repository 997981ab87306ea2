"""Spreadsheets, slides, and Word and HTML tables come out as Markdown rows under a header."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.chunking import chunk_text
from ingestion.loaders import extract_text, load_text
from ingestion.parsers.tables import markdown_table
from services.common.errors import DocumentParseError, UnsupportedFileTypeError
from services.common.filetypes import detect_type
from services.common.settings import ParsingSettings
from tests.data.office import (
    DOCX_AFTER,
    DOCX_BEFORE,
    PRICE_HEADER,
    PRICE_ROWS,
    SLIDES,
    STAFF_ROWS,
    build_csv,
    build_docx_with_table,
    build_pptx,
    build_xlsx,
    price_row,
)

LIMITS = ParsingSettings().model_dump()
HEADER = price_row(PRICE_HEADER)


def _extract(path: Path, limits: dict[str, float] = LIMITS) -> str:
    return extract_text(path, detect_type(path.name, path.read_bytes()[:4096]), limits)


def test_xlsx_gives_each_sheet_with_its_header_and_rows(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "prices.xlsx")
    text = _extract(tmp_path / "prices.xlsx")
    prices, staff = text.split("## Sheet: Staff")
    assert prices.startswith("## Sheet: 价格表\n\n" + HEADER + "\n| --- | --- | --- |\n")
    assert all(price_row(row) in prices for row in PRICE_ROWS)
    # The blank first row is skipped: the first row with cells is the header.
    assert staff.strip().startswith("| Name | Office | Phone |\n| --- |")
    assert all(price_row(row) in staff for row in STAFF_ROWS)


def test_csv_is_one_table(tmp_path: Path) -> None:
    build_csv(tmp_path / "prices.csv")
    text = _extract(tmp_path / "prices.csv")
    assert text.split("\n")[0] == HEADER
    assert text.split("\n")[2:] == [price_row(row) for row in PRICE_ROWS]


def test_semicolon_csv_with_pipes_and_newlines_in_cells(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text('名称;说明\n"A|B";"两行\n说明"\n', encoding="utf-8")
    assert _extract(path).split("\n") == [
        "| 名称 | 说明 |",
        "| --- | --- |",
        "| A\\|B | 两行 说明 |",
    ]


def test_sheet_over_the_row_limit_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "big.xlsx", extra_rows=50)
    limits = {**LIMITS, "max_sheet_rows": 30}
    with pytest.raises(DocumentParseError, match=r"more than 30 rows.*MAX_SHEET_ROWS"):
        _extract(tmp_path / "big.xlsx", limits)


def test_the_raw_row_count_matches_the_rows_openpyxl_reads(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from ingestion.parsers.spreadsheets import RowBudget, count_rows

    build_xlsx(tmp_path / "big.xlsx", extra_rows=50)
    workbook = load_workbook(tmp_path / "big.xlsx", read_only=True)
    rows = sum(1 for sheet in workbook.worksheets for _ in sheet.iter_rows())
    workbook.close()
    budget = RowBudget("big.xlsx", 10_000)
    count_rows(tmp_path / "big.xlsx", budget)
    assert budget.used == rows
    with pytest.raises(DocumentParseError, match=f"more than {rows - 1} rows"):
        count_rows(tmp_path / "big.xlsx", RowBudget("big.xlsx", rows - 1))


def test_pptx_gives_titles_text_notes_and_tables_slide_by_slide(tmp_path: Path) -> None:
    build_pptx(tmp_path / "deck.pptx")
    text = _extract(tmp_path / "deck.pptx")
    slides = text.split("## Slide ")[1:]
    assert [s.split("\n")[0] for s in slides] == ["1: 季度汇报", "2: Roadmap", "3: 价格"]
    for slide, (_title, lines, notes) in zip(slides, SLIDES, strict=False):
        assert all(line in slide for line in lines)
        assert (f"Notes: {notes}" in slide) == bool(notes)
    assert HEADER in slides[2] and price_row(PRICE_ROWS[-1]) in slides[2]


def test_pptx_over_the_slide_limit_is_refused(tmp_path: Path) -> None:
    build_pptx(tmp_path / "deck.pptx")
    with pytest.raises(DocumentParseError, match="3 slides, over the limit of 2"):
        _extract(tmp_path / "deck.pptx", {**LIMITS, "max_slides": 2})


def test_a_slide_is_chunked_without_cutting_a_sentence(tmp_path: Path) -> None:
    build_pptx(tmp_path / "deck.pptx")
    chunks = chunk_text(_extract(tmp_path / "deck.pptx"), 60, 0)
    sentences = [line for _title, lines, _notes in SLIDES for line in lines]
    assert all(any(sentence in chunk for chunk in chunks) for sentence in sentences)


def test_docx_table_sits_between_its_paragraphs(tmp_path: Path) -> None:
    build_docx_with_table(tmp_path / "table.docx")
    text = _extract(tmp_path / "table.docx")
    assert text.startswith("# 滤芯价格\n\n" + DOCX_BEFORE + "\n\n" + HEADER)
    assert text.endswith(price_row(PRICE_ROWS[-1]) + "\n\n" + DOCX_AFTER)


def test_html_table_becomes_markdown_rows(tmp_path: Path) -> None:
    cells = "".join(
        "<tr>" + "".join(f"<td>{value}</td>" for value in row) + "</tr>" for row in PRICE_ROWS
    )
    head = "<tr>" + "".join(f"<th> {value} </th>" for value in PRICE_HEADER) + "</tr>"
    path = tmp_path / "prices.html"
    path.write_text(f"<html><body><p>价格如下</p><table>{head}{cells}</table><p>完</p>")
    lines = _extract(path).split("\n")
    assert lines[:3] == ["价格如下", "", HEADER]
    assert lines[4:8] == [price_row(row) for row in PRICE_ROWS] and lines[-1] == "完"


def test_long_table_is_split_by_rows_with_the_header_in_every_chunk(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "long.xlsx", extra_rows=200)
    chunks = chunk_text(_extract(tmp_path / "long.xlsx"), 300, 60)
    table_chunks = [chunk for chunk in chunks if "| 配件" in chunk]
    assert len(table_chunks) > 5
    assert all(HEADER + "\n| --- | --- | --- |\n" in chunk for chunk in table_chunks)
    assert all(chunk.startswith("## Sheet: 价格表\n") for chunk in table_chunks)  # sheet named
    assert all(len(chunk) <= 300 for chunk in chunks)
    rows = [line for chunk in table_chunks for line in chunk.split("\n") if "| 配件" in line]
    assert rows == [f"| 配件{i} | P-{i} | {i} |" for i in range(200)]  # each row once, whole


def test_markdown_table_pads_short_rows_and_skips_blank_ones() -> None:
    table = markdown_table([["a", "b", None], [None, None], ["1"], [2.0, "x", ""]])
    assert table.split("\n") == ["| a | b |", "| --- | --- |", "| 1 |  |", "| 2 | x |"]


@pytest.mark.parametrize("name", ["old.xls", "old.ppt", "old.doc"])
def test_legacy_office_files_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(UnsupportedFileTypeError, match=r"legacy .* save it as \.(xlsx|pptx|docx)"):
        detect_type(name, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500))


def test_office_types_are_detected_from_content(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "a.xlsx")
    build_pptx(tmp_path / "a.pptx")
    assert detect_type("renamed.docx", (tmp_path / "a.xlsx").read_bytes()) == "xlsx"
    assert detect_type("deck.pptx", (tmp_path / "a.pptx").read_bytes()[:64]) == "pptx"


def test_damaged_xlsx_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    build_xlsx(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DocumentParseError, match="could not read XLSX"):
        extract_text(path, "xlsx", LIMITS)


def test_xlsx_is_parsed_in_the_bounded_child(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "prices.xlsx")
    assert load_text(tmp_path / "prices.xlsx", "xlsx") == _extract(tmp_path / "prices.xlsx")
