"""Chunks keep the page, sheet and rows, or slide they were read from (real parsers, no child)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.loaders import extract_sections
from ingestion.located_chunks import chunk_sections
from ingestion.sections import section
from services.common.settings import ParsingSettings
from services.evaluation.parse_corpus import CJK_FONT, write_corpus

LIMITS = ParsingSettings().model_dump()
needs_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="fonts-noto-cjk missing")


def _chunks(tmp_path: Path, name: str, kind: str, size: int = 500) -> list[tuple[str, object]]:
    [(_case, path)] = write_corpus(tmp_path, {name})
    return list(chunk_sections(extract_sections(path, kind, LIMITS), size, 50))


@needs_font
def test_pdf_chunks_keep_their_page(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path, "headers.pdf", "pdf")
    pages = [location for _text, location in chunks]
    assert pages == [{"page": n} for n in range(1, len(pages) + 1)] and len(pages) == 3


@needs_font
def test_slides_keep_their_number(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path, "slides.pptx", "pptx")
    assert [location for _text, location in chunks] == [{"slide": n} for n in range(1, 6)]
    assert "Kestrel" in chunks[3][0] and "| PP 棉滤芯 | F-180 | 89 | 三个月 |" in chunks[4][0]


@needs_font
def test_sheet_chunks_keep_the_sheet_and_their_rows(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path, "table.xlsx", "xlsx", size=120)
    assert len(chunks) > 1  # small chunks: the table is cut into row blocks
    for text, location in chunks:
        assert isinstance(location, dict) and location["sheet"] == "价格表"
        first, _, _last = str(location["rows"]).partition("-")
        assert int(first) >= 2
        assert ("| 天工净水器 |" in text) == (first == "2")
    last_rows = str(chunks[-1][1]["rows"])  # type: ignore[index]
    assert last_rows.endswith("6")


def test_a_csv_says_its_rows_and_plain_text_says_nothing() -> None:
    table = "| 城市 | 运费 |\n| --- | --- |\n| 拉萨 | 58 |\n| 喀什 | 64 |"
    chunks = chunk_sections([section(table, None, tabular=True), section("纯文本。")], 500, 50)
    assert chunks == [(table, {"rows": "2-3"}), ("纯文本。", None)]
