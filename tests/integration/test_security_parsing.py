"""Parsing is bounded: PDF time, pages and memory in a child process; .docx bombs refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfWriter

from ingestion.loaders import load_text
from services.common.errors import DocumentParseError, PayloadTooLargeError
from services.common.settings import ParsingSettings

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"


def _blank_pdf(path: Path, pages: int) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    with path.open("wb") as out:
        writer.write(out)
    return path


def test_pdf_text_comes_from_the_bounded_child() -> None:
    text = load_text(DATA / "sample.pdf", "pdf", ParsingSettings(pdf_timeout_s=60))
    assert "Kestrel Range" in text


def test_pdf_over_the_page_limit_is_refused(tmp_path: Path) -> None:
    path = _blank_pdf(tmp_path / "many.pdf", 3)
    with pytest.raises(DocumentParseError, match=r"3 pages, over the limit of 2.*PDF_MAX_PAGES"):
        load_text(path, "pdf", ParsingSettings(pdf_max_pages=2))


def test_pdf_over_the_time_limit_is_refused() -> None:
    # No PDF parses in a millisecond, not even the child's start: the limit is what answers.
    with pytest.raises(DocumentParseError, match="PDF_TIMEOUT_S"):
        load_text(DATA / "sample.pdf", "pdf", ParsingSettings(pdf_timeout_s=0.001))


def test_pdf_over_the_memory_cap_is_refused() -> None:
    # 16 MB of address space is too little for the parser to load: the cap is what answers.
    with pytest.raises(DocumentParseError, match="PDF_MAX_MEMORY_MB"):
        load_text(DATA / "sample.pdf", "pdf", ParsingSettings(pdf_max_memory_mb=16))


def _docx(tmp_path: Path, document: bytes) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b'<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", document)
    path = tmp_path / "bomb.docx"
    path.write_bytes(buffer.getvalue())
    return path


def test_worker_refuses_docx_bombs_already_stored(tmp_path: Path) -> None:
    """Files stored before the upload check existed are refused by the worker too."""
    big = _docx(tmp_path, b"<a>" + b"0" * (3 * 2**20) + b"</a>")
    with pytest.raises(PayloadTooLargeError, match="MAX_UNPACKED_MB"):
        load_text(big, "docx", ParsingSettings(max_unpacked_mb=2))
    with pytest.raises(DocumentParseError, match="zip bomb"):
        load_text(big, "docx", ParsingSettings(max_compression_ratio=50))
    entity = _docx(tmp_path, b'<!DOCTYPE d [<!ENTITY e "x">]><w:document>&e;</w:document>')
    with pytest.raises(DocumentParseError, match="entities"):
        load_text(entity, "docx")
    assert "Word" in load_text(DATA / "sample.docx", "docx") or load_text(
        DATA / "sample.docx", "docx"
    )
