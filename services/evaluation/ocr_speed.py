"""OCR pages per second on scanned Chinese A4 pages (200 dpi): warm, and end to end per document.

Warm: one engine, loaded and past its first page, reads the pages of a scan in this process.
End to end: the scan goes through the bounded parser child as the worker parses it (process
start, imports, model loading, rendering included).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.evaluation.parse_corpus import SCAN_DPI, ZH_TEXT, scan_image
from services.evaluation.parse_eval import char_accuracy

if TYPE_CHECKING:
    from services.common.settings_sections import ParsingSettings


def page_texts(pages: int) -> list[list[str]]:
    """Different paragraphs on each page (rotated), so no page is a copy of the first."""
    n = len(ZH_TEXT)
    return [ZH_TEXT[i % n :] + ZH_TEXT[: i % n] for i in range(pages)]


def write_scan(path: Path, pages: int) -> list[str]:
    """A scanned PDF of ``pages`` A4 pages at 200 dpi; returns each page's expected text."""
    texts = page_texts(pages)
    images = [scan_image(text) for text in texts]
    images[0].save(path, "PDF", resolution=SCAN_DPI, save_all=True, append_images=images[1:])
    return ["".join(text) for text in texts]


def warm_pages(path: Path, expected: list[str], limits: ParsingSettings) -> tuple[float, float]:
    """Pages/s and the lowest char accuracy of a warm engine reading every page of ``path``."""
    import pypdfium2

    from ingestion.parsers.ocr import ocr_pdf_page

    settings = limits.model_dump()
    document = pypdfium2.PdfDocument(path)
    try:
        ocr_pdf_page(document[0], settings)  # loads the models and runs them once
        started = time.perf_counter()
        texts = [ocr_pdf_page(document[n], settings) for n in range(len(expected))]
        seconds = time.perf_counter() - started
    finally:
        document.close()
    accuracy = min(char_accuracy(want, text) for want, text in zip(expected, texts, strict=True))
    return len(expected) / seconds, accuracy


def ocr_speed(limits: ParsingSettings, pages: int = 5) -> dict[str, Any]:
    """Warm pages/s, end-to-end pages/s of a ``pages``-page scan, and the lowest accuracy."""
    from ingestion.bounded_parse import parse_bounded

    with tempfile.TemporaryDirectory(prefix="zhiku-ocr-speed-") as scratch:
        path = Path(scratch) / "scan.pdf"
        expected = write_scan(path, pages)
        warm, accuracy = warm_pages(path, expected, limits)
        started = time.perf_counter()
        sections = parse_bounded(path, "pdf", limits)
        seconds = time.perf_counter() - started
    parsed = "".join(section["text"] for section in sections)
    return {
        "ocr_warm_pages_per_s": round(warm, 3),
        f"ocr_{pages}_page_scan_pages_per_s": round(pages / seconds, 3),
        "ocr_min_char_accuracy": round(min(accuracy, char_accuracy("".join(expected), parsed)), 4),
    }
