"""Tables as Markdown rows: the one shape every parser gives a table and the chunker splits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag

# A line of a Markdown table, as the chunker recognises it.
TABLE_LINE_PREFIX = "|"


def cell_text(value: object) -> str:
    """A cell as one line of text: None is empty, whitespace collapsed, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 12.0 from a sheet reads as 12
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def table_row(cells: Sequence[object]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cell_text(cell) for cell in cells) + " |"


def separator_row(width: int) -> str:
    """The line under a Markdown table's header."""
    return "|" + " --- |" * max(width, 1)


def markdown_table(rows: Iterable[Sequence[object]]) -> str:
    """Rows as a Markdown table whose first non-empty row is the header; '' when all are empty."""
    lines: list[str] = []
    width = 0
    for row in rows:
        cells = trim_row(row)
        if not cells:
            continue
        if not lines:
            width = len(cells)
            lines += [table_row(cells), separator_row(width)]
        else:
            lines.append(table_row(pad_row(cells, width)))
    return "\n".join(lines)


def trim_row(row: Sequence[object]) -> list[object]:
    """The row without its trailing empty cells; [] for a row with no content at all."""
    cells = list(row)
    while cells and cell_text(cells[-1]) == "":
        cells.pop()
    return cells


def pad_row(cells: list[object], width: int) -> list[object]:
    """Cells padded with empty ones up to the header's width (a longer row keeps its cells)."""
    return cells + [""] * (width - len(cells))


def html_table(table: Tag) -> str:
    """An HTML <table> as Markdown rows ('' for a layout table without cells)."""
    rows = (
        [cell.get_text(" ", strip=True) for cell in row.find_all(("td", "th"), recursive=False)]
        for row in table.find_all("tr")
    )
    return markdown_table(rows)
