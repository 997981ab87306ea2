"""A PDF page preview is rendered in a child bounded in time and memory; its failures are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import DocumentParseError, NotFoundError
from services.common.settings import ParsingSettings
from services.evaluation.parse_corpus import CJK_FONT, write_corpus
from services.gateway.documents.pages import render_page_bounded

needs_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="needs fonts-noto-cjk")


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    [(_case, path)] = write_corpus(tmp_path, {"zh_text.pdf"})
    return path


@needs_font
def test_a_page_comes_back_from_the_child_as_png(pdf: Path) -> None:
    png = render_page_bounded(pdf, 1, "青岚电器\x00公司", ParsingSettings())
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@needs_font
def test_a_child_past_its_time_is_killed_and_named(pdf: Path) -> None:
    limits = ParsingSettings(page_render_timeout_s=0.01)
    with pytest.raises(DocumentParseError, match="PAGE_RENDER_TIMEOUT_S"):
        render_page_bounded(pdf, 1, None, limits)


@needs_font
def test_a_child_over_its_memory_is_a_refusal_not_a_crash(pdf: Path) -> None:
    with pytest.raises(DocumentParseError, match="MAX_MEMORY_MB"):
        render_page_bounded(pdf, 1, None, ParsingSettings(max_memory_mb=16))


@needs_font
def test_the_childs_own_errors_keep_their_type(pdf: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="page 9"):
        render_page_bounded(pdf, 9, None, ParsingSettings())
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00" * 64)
    with pytest.raises(DocumentParseError, match="could not open the PDF"):
        render_page_bounded(broken, 1, None, ParsingSettings())
