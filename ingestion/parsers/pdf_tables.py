"""Ruled tables on a PDF page: pdfplumber finds their cells, PDFium's characters fill them.

pdfplumber (pdfminer) reads ruling lines well but misses the text of some CJK fonts that PDFium
reads, so the geometry comes from one and the characters from the other. Only pages drawn with
enough line and rectangle objects to hold a table pay for the detection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsers.tables import markdown_table

if TYPE_CHECKING:
    from pypdfium2 import PdfPage, PdfTextPage

logger = logging.getLogger(__name__)

MIN_PATHS = 4  # a table needs at least four ruling lines (or one rectangle per cell)
Box = tuple[float, float, float, float]  # x0, top, x1, bottom, from the page's top-left


@contextmanager
def table_finder(path: Path) -> Iterator[Any]:
    """The pdfplumber document, or None when it cannot open the file (then: no tables)."""
    import pdfplumber

    try:
        pdf = pdfplumber.open(path)
    except MemoryError:
        raise
    except Exception as exc:  # pdfminer's many types; PDFium may still read the text
        logger.warning("table detection is off for %s: %s", path.name, exc)
        yield None
        return
    with pdf:
        yield pdf


def may_hold_table(page: PdfPage) -> bool:
    """Whether the page draws enough paths to be worth a table search."""
    import pypdfium2.raw as pdfium_c

    paths = 0
    for obj in page.get_objects(max_depth=2):
        paths += obj.type == pdfium_c.FPDF_PAGEOBJ_PATH
        if paths >= MIN_PATHS:
            return True
    return False


def find_tables(finder: Any, number: int) -> list[list[list[Box | None]]]:
    """Each table on page ``number`` as rows of cell boxes."""
    if finder is None:
        return []
    page = finder.pages[number]
    try:
        return [[list(row.cells) for row in table.rows] for table in page.find_tables()]
    except MemoryError:
        raise
    except Exception as exc:
        logger.warning("table detection failed on page %d: %s", number + 1, exc)
        return []
    finally:
        page.close()


def text_with_tables(
    textpage: PdfTextPage, height: float, tables: list[list[list[Box | None]]]
) -> str:
    """The page's text with each table's characters moved into a Markdown table in its place."""
    text = textpage.get_text_range()
    cells: list[list[list[list[str]]]] = [[[[] for _ in row] for row in table] for table in tables]
    out: list[str] = []
    placed: set[int] = set()
    for index, char in enumerate(text):
        left, bottom, right, top = textpage.get_charbox(index)
        hit = _cell_at(tables, (left + right) / 2, height - (bottom + top) / 2)
        if hit is None:
            out.append(char)
            continue
        t, r, c = hit
        if t not in placed:
            placed.add(t)
            out.append(f"\n\n\x00{t}\x00\n\n")
        cells[t][r][c].append(char)
    joined = "".join(out)
    for t in placed:
        rows = (["".join(chars).strip() for chars in row] for row in cells[t])
        joined = joined.replace(f"\x00{t}\x00", markdown_table(rows))
    return joined


def _cell_at(
    tables: list[list[list[Box | None]]], x: float, y: float
) -> tuple[int, int, int] | None:
    for t, table in enumerate(tables):
        for r, row in enumerate(table):
            for c, box in enumerate(row):
                if box is not None and box[0] <= x <= box[2] and box[1] <= y <= box[3]:
                    return t, r, c
    return None
