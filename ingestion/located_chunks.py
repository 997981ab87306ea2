"""Chunks that keep where they were read: each section is split on its own.

A chunk never straddles two pages, sheets or slides, and keeps its section's location; a
spreadsheet chunk also says which table rows it holds (the header row is 1).
"""

from __future__ import annotations

from typing import Any

from ingestion.chunking import TABLE_SEPARATOR, chunk_text
from ingestion.sections import Section

LocatedChunk = tuple[str, dict[str, Any] | None]


def chunk_sections(sections: list[Section], size: int, overlap: int) -> list[LocatedChunk]:
    """Every section's chunks in order, each with its location (and its rows, in a sheet)."""
    chunks: list[LocatedChunk] = []
    for part in sections:
        texts = chunk_text(part["text"], size, overlap)
        if not part["tabular"]:
            chunks.extend((text, part["location"]) for text in texts)
            continue
        rows = _RowFinder(part["text"])
        for text in texts:
            span = rows.span(text)
            location = dict(part["location"] or {})
            if span is not None:
                location["rows"] = f"{span[0]}-{span[1]}" if span[1] > span[0] else str(span[0])
            chunks.append((text, location or None))
    return chunks


class _RowFinder:
    """Table rows of a sheet's text by number: the header is row 1, the first data row 2."""

    def __init__(self, text: str) -> None:
        lines = text.split("\n")
        self.header = ""
        self.rows: list[str] = []
        for i, line in enumerate(lines):
            if not line.startswith("|") or TABLE_SEPARATOR.fullmatch(line):
                continue
            if not self.header and i + 1 < len(lines) and TABLE_SEPARATOR.fullmatch(lines[i + 1]):
                self.header = line
            else:
                self.rows.append(line)
        self.cursor = 0

    def span(self, chunk: str) -> tuple[int, int] | None:
        """The first and last row number the chunk holds; None for a chunk without rows."""
        mine = [
            line for line in chunk.split("\n")
            if line.startswith("|") and line != self.header and not TABLE_SEPARATOR.fullmatch(line)
        ]  # fmt: skip
        if not mine:
            return None
        first = self._find(mine[0])
        if first is None:
            return None
        last = self._find(mine[-1], first) if len(mine) > 1 else first
        self.cursor = first
        return first + 2, (last if last is not None else first) + 2

    def _find(self, line: str, start: int | None = None) -> int | None:
        begin = self.cursor if start is None else start
        for at in (begin, 0):
            try:
                return self.rows.index(line, at)
            except ValueError:
                continue
        return None
