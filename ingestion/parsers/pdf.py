"""PDF pages with PDFium (pypdfium2): the text layer, ruled tables as Markdown, OCR for scans.

A page set in two columns is read left column first (ingestion.parsers.pdf_columns).
A page without a text layer but with images (a scan) is rendered and read by OCR, up to a page
limit; the parser child's time and memory limits bound the rest. Running headers, footers and
page numbers are then removed and wrapped lines joined (ingestion.parsers.pdf_clean).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.parse_progress import report_pages
from ingestion.parsers.pdf_clean import clean_pages
from ingestion.parsers.pdf_columns import column_text
from ingestion.parsers.pdf_tables import find_tables, may_hold_table, table_finder, text_with_tables
from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from pypdfium2 import PdfDocument, PdfPage

logger = logging.getLogger(__name__)


def load_pdf(path: Path, limits: dict[str, float]) -> str:
    """The text of every page, pages separated by a blank line."""
    return "\n\n".join(load_pdf_pages(path, limits))


def load_pdf_pages(path: Path, limits: dict[str, float]) -> list[str]:
    """The text of each page, in order: item n is page n + 1."""
    import pypdfium2

    max_pages = int(limits["pdf_max_pages"])
    try:
        document = pypdfium2.PdfDocument(path)
    except pypdfium2.PdfiumError as exc:
        raise DocumentParseError(f"could not read PDF: {exc}") from exc
    try:
        count = len(document)
        if count > max_pages:
            raise DocumentParseError(
                f"the PDF has {count} pages, over the limit of {max_pages} "
                "(ZHIKU_PARSING__PDF_MAX_PAGES)"
            )
        return clean_pages(_pages(path, document, limits))
    except (DocumentParseError, MemoryError):
        raise
    except Exception as exc:  # PdfiumError and the like on a damaged page
        raise DocumentParseError(f"could not read PDF: {exc or type(exc).__name__}") from exc
    finally:
        document.close()


def _pages(path: Path, document: PdfDocument, limits: dict[str, float]) -> list[str]:
    ocr_left = int(limits["ocr_max_pages"])
    texts: list[str] = []
    with table_finder(path) as finder:
        for number in range(len(document)):
            page = document[number]
            textpage = page.get_textpage()
            if textpage.count_chars() == 0 and _has_image(page):
                if ocr_left <= 0:
                    raise DocumentParseError(
                        f"the PDF has more than {int(limits['ocr_max_pages'])} scanned pages "
                        "to OCR (ZHIKU_PARSING__OCR_MAX_PAGES); refused"
                    )
                ocr_left -= 1
                texts.append(_ocr_page(page, limits))
                logger.info("OCR: page %d of %s done", number + 1, path.name)
            elif may_hold_table(page) and (tables := find_tables(finder, number)):
                texts.append(text_with_tables(textpage, page.get_height(), tables))
            else:
                texts.append(column_text(textpage) or textpage.get_text_range())
            textpage.close()
            page.close()
            report_pages(number + 1, len(document))
    return texts


def _has_image(page: PdfPage) -> bool:
    import pypdfium2.raw as pdfium_c

    objects = page.get_objects(max_depth=2)
    return any(obj.type == pdfium_c.FPDF_PAGEOBJ_IMAGE for obj in objects)


def _ocr_page(page: PdfPage, limits: dict[str, float]) -> str:
    """Render one scanned page (ZHIKU_PARSING__OCR_DPI, less for a huge page) and read it."""
    from ingestion.parsers.ocr import ocr_pdf_page

    return ocr_pdf_page(page, limits)
