"""PDF text and ruled tables through PDFium, OCR of scanned pages and images, and their limits."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ingestion.loaders import extract_text, load_text
from ingestion.parsers.pdf_clean import clean_pages, join_wrapped
from services.common.errors import DocumentParseError, UnsupportedFileTypeError
from services.common.filetypes import detect_type
from services.common.settings import ParsingSettings
from services.evaluation.parse_corpus import (
    CJK_FONT,
    EN_TEXT,
    HEADER_TEXT,
    LONG_PARAGRAPHS,
    TABLE,
    ZH_TEXT,
    write_corpus,
)
from services.evaluation.parse_eval import cell_recall, char_accuracy, markdown_tables

LIMITS = ParsingSettings().model_dump()
needs_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="needs fonts-noto-cjk")


def _corpus(tmp_path: Path, name: str) -> Path:
    [(_case, path)] = write_corpus(tmp_path, {name})
    return path


@needs_font
def test_chinese_text_layer_has_no_spaces_between_characters(tmp_path: Path) -> None:
    text = extract_text(_corpus(tmp_path, "zh_text.pdf"), "pdf", LIMITS)
    assert text.split("\n") == ZH_TEXT


@needs_font
def test_pdf_table_is_markdown_rows_between_its_paragraphs(tmp_path: Path) -> None:
    text = extract_text(_corpus(tmp_path, "table.pdf"), "pdf", LIMITS)
    [(header, rows)] = markdown_tables(text)
    assert [header, *rows] == TABLE
    before, after = text.split("| " + " | ".join(TABLE[0]) + " |")
    assert ZH_TEXT[0] in before and ZH_TEXT[1] in after.split("| two years |")[1]


@needs_font
@pytest.mark.timeout(180)
def test_scanned_pdf_page_is_read_by_ocr_in_the_child(tmp_path: Path) -> None:
    text = load_text(_corpus(tmp_path, "zh_scan.pdf"), "pdf", ParsingSettings(timeout_s=150))
    assert char_accuracy("".join(ZH_TEXT), text) >= 0.95
    assert " " not in text  # no spaces put between Chinese characters


@needs_font
@pytest.mark.timeout(180)
def test_png_upload_is_read_by_ocr(tmp_path: Path) -> None:
    path = _corpus(tmp_path, "zh_scan.png")
    assert detect_type("scan.png", path.read_bytes()[:64]) == "png"
    text = load_text(path, "png", ParsingSettings(timeout_s=150))
    assert char_accuracy("".join(ZH_TEXT[:3]), text) >= 0.95


@needs_font
def test_scanned_pages_over_the_ocr_limit_are_refused(tmp_path: Path) -> None:
    path = _corpus(tmp_path, "zh_scan.pdf")
    with pytest.raises(DocumentParseError, match="OCR_MAX_PAGES"):
        extract_text(path, "pdf", {**LIMITS, "ocr_max_pages": 0})


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a canvas of ``width``×``height`` and holds almost nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + data + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_damaged_image_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    image = Image.new("RGB", (64, 64), "white")
    image.save(path, "JPEG")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DocumentParseError, match="could not read image"):
        extract_text(path, "jpg", LIMITS)


def test_images_need_an_image_name_and_image_content() -> None:
    png = _png_header(10, 10)
    assert detect_type("photo.PNG", png) == "png"
    assert detect_type("photo.jpeg", b"\xff\xd8\xff\xe0" + bytes(60)) == "jpg"
    with pytest.raises(UnsupportedFileTypeError):
        detect_type("photo.jpg", b"plain text, not an image")
    with pytest.raises(UnsupportedFileTypeError):
        detect_type("photo.md", png)


def test_cell_recall_wants_the_right_header_and_column() -> None:
    table = [["Name", "Price"], ["A", "1"], ["B", "2"]]
    good = "| Name | Price |\n| --- | --- |\n| A | 1 |\n| B | 2 |"
    assert cell_recall(table, good) == 1.0
    assert cell_recall(table, good.replace("| B | 2 |", "| B | 3 |")) == 0.75
    assert cell_recall(table, good.replace("Price", "Cost")) == 0.0  # no header, no credit


def test_char_accuracy_ignores_whitespace_and_tables_but_counts_edits() -> None:
    assert char_accuracy(EN_TEXT[0], EN_TEXT[0].replace(" ", "\n")) == 1.0
    assert char_accuracy("天工净水器", "## Slide 1\n天工净\n水器\n| a | b |") == 1.0
    assert char_accuracy("天工净水器", "天工水器") == pytest.approx(0.8)


@needs_font
def test_running_header_and_page_numbers_go_and_wrapped_lines_join(tmp_path: Path) -> None:
    text = extract_text(_corpus(tmp_path, "headers.pdf"), "pdf", LIMITS)
    assert text.split("\n\n") == LONG_PARAGRAPHS  # each paragraph wrapped over lines, rejoined
    assert HEADER_TEXT not in text and "页" not in text


def test_line_joins_keep_lists_sentences_and_short_lines() -> None:
    lines = [
        "售后服务热线为四零零八二零七七八八，服务时间为每天上午八点至",
        "晚上八点。",
        "第二条 滤芯的更换",
        "1. Replace the PP filter every six months, and the carbon",
        "filter every year.",
        "2. Keep the receipt.",
    ]
    assert join_wrapped(lines).split("\n") == [
        "售后服务热线为四零零八二零七七八八，服务时间为每天上午八点至晚上八点。",
        "第二条 滤芯的更换",
        "1. Replace the PP filter every six months, and the carbon filter every year.",
        "2. Keep the receipt.",
    ]


def test_page_furniture_needs_three_pages_and_a_page_edge() -> None:
    bodies = ["The mast stood.", "Snow fell all night.", "The road opened at noon."]
    pages = [f"Annual report 2024\n{body}\nMore.\nLast.\n- {i} -" for i, body in enumerate(bodies)]
    cleaned = clean_pages(pages)
    assert [page.split("\n")[0] for page in cleaned] == bodies
    assert all("Annual report" not in page and "- " not in page for page in cleaned)
    two = clean_pages(pages[:2])  # two pages are too few to call a line furniture
    assert all(page.startswith("Annual report 2024") for page in two)


def test_a_line_at_the_top_of_one_page_and_the_bottom_of_others_is_content() -> None:
    # Short paragraphs that open one page and close the next are text, not a running header.
    lines = ["One short line.", "Two short lines.", "Three here.", "Four there.", "Five."]
    pages = ["\n".join(lines[i:] + lines[:i]) for i in range(3)]
    assert all(set(page.split("\n")) == set(lines) for page in clean_pages(pages))


@needs_font
def test_the_child_reports_pages_read_while_it_parses(tmp_path: Path) -> None:
    heard: list[tuple[int, int]] = []
    path = _corpus(tmp_path, "headers.pdf")
    text = load_text(path, "pdf", ParsingSettings(timeout_s=60), lambda d, t: heard.append((d, t)))
    assert heard == [(1, 3), (2, 3), (3, 3)] and LONG_PARAGRAPHS[0] in text
