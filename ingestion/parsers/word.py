"""Word documents (docx): paragraphs and tables in document order, tables as Markdown rows.

Headings become Markdown headings, so the chunker starts a chunk at a section.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion.parsers.tables import markdown_table
from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

_HEADING_STYLE = re.compile(r"^(?:Heading|标题)\s*(\d)$", re.IGNORECASE)


def load_docx(path: Path) -> str:
    """The body of a Word document: paragraphs and tables in the order they appear."""
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks = [
            table_text(block) if isinstance(block, Table) else paragraph_text(block)
            for block in document.iter_inner_content()
        ]
    except MemoryError:
        raise
    # A broken zip gives BadZipFile, a zip without word/document.xml gives KeyError, and so on.
    except Exception as exc:
        raise DocumentParseError(f"could not read DOCX: {exc or type(exc).__name__}") from exc
    return "\n\n".join(block for block in blocks if block)


def paragraph_text(paragraph: Paragraph) -> str:
    """A paragraph's text; a heading style gives it a Markdown heading marker."""
    text = paragraph.text.strip()
    style = paragraph.style.name if paragraph.style is not None else ""
    match = _HEADING_STYLE.match(style or "")
    if text and match:
        return "#" * min(int(match.group(1)), 6) + " " + " ".join(text.split())
    return text


def table_text(table: Table) -> str:
    """A table as Markdown rows; a merged cell repeats its text in each column it spans."""
    rows = ([cell.text for cell in row.cells] for row in table.rows)
    return markdown_table(rows)
