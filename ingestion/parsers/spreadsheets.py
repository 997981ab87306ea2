"""Spreadsheets (xlsx, csv) as Markdown tables, one per sheet, streamed row by row.

openpyxl's read-only mode parses a sheet's XML as it is read, so a large sheet is never held
whole. It does read a sheet once in full when the file does not declare its size, so the rows
are first counted in the raw XML (a fast scan, no parsing) and a million-row sheet is refused
before openpyxl starts; the row limit is counted again as rows arrive.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ingestion.parsers.tables import markdown_table
from services.common.errors import DocumentParseError


class RowBudget:
    """Counts rows across all sheets of one file and refuses the file past ``limit``."""

    def __init__(self, name: str, limit: int) -> None:
        self.name, self.limit, self.used = name, limit, 0

    def count(self, rows: int) -> None:
        self.used += rows
        if self.used > self.limit:
            raise DocumentParseError(
                f"'{self.name}' has more than {self.limit} rows "
                "(ZHIKU_PARSING__MAX_SHEET_ROWS); refused"
            )

    def take(self, rows: Iterable[Sequence[object]]) -> Iterator[Sequence[object]]:
        for row in rows:
            self.count(1)
            yield row


# A row element, namespace prefix or not (<row …>, <row/>, <x:row …>); never <rowBreaks>.
_ROW = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row[\s/>]")
_SHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml")


def count_rows(path: Path, budget: RowBudget) -> None:
    """Count every sheet's row elements into ``budget`` (refusing past its limit), unparsed."""
    with zipfile.ZipFile(path) as package:
        for name in package.namelist():
            if not _SHEET_PART.fullmatch(name):
                continue
            with package.open(name) as part:
                carry = b""
                while block := part.read(1 << 20):
                    text = carry + block
                    # Cut at the last '<': a row tag is never split between two scans.
                    cut = text.rfind(b"<")
                    cut = len(text) if cut < 0 else cut
                    budget.count(len(_ROW.findall(text, 0, cut)))
                    carry = text[cut:]
                budget.count(len(_ROW.findall(carry)))


def sheet_text(title: str | None, rows: Iterable[Sequence[object]]) -> str:
    """A sheet as a heading and a Markdown table, the first non-empty row its header."""
    table = markdown_table(rows)
    if not table:
        return ""
    return f"## {title}\n\n{table}" if title else table


def load_xlsx(path: Path, max_rows: int) -> str:
    """Every sheet of a workbook, in order, as a heading and a table."""
    return "\n\n".join(text for _title, text in load_sheets(path, max_rows))


def load_sheets(path: Path, max_rows: int) -> list[tuple[str, str]]:
    """Each sheet that has cells, as its name and its text (a heading and a table)."""
    from openpyxl import load_workbook

    try:
        count_rows(path, RowBudget(path.name, max_rows))
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (DocumentParseError, MemoryError):
        raise
    # A damaged zip or missing part raises BadZipFile, KeyError, InvalidFileException…
    except Exception as exc:
        raise DocumentParseError(f"could not read XLSX: {exc or type(exc).__name__}") from exc
    budget = RowBudget(path.name, max_rows)
    try:
        parts = []
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            parts.append((sheet.title, sheet_text(f"Sheet: {sheet.title}", budget.take(rows))))
        return [(title, text) for title, text in parts if text]
    except (DocumentParseError, MemoryError):
        raise
    except Exception as exc:
        raise DocumentParseError(f"could not read XLSX: {exc or type(exc).__name__}") from exc
    finally:
        workbook.close()


def load_csv(text: str, name: str, max_rows: int) -> str:
    """A decoded CSV (comma, semicolon or tab separated) as one table."""
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(len(text) + 1)  # one huge cell is text to keep, not an error
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return sheet_text(None, RowBudget(name, max_rows).take(reader))
    except csv.Error as exc:
        raise DocumentParseError(f"could not read CSV: {exc}") from exc
