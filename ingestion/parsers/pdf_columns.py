"""Two-column PDF pages in reading order: the left column top to bottom, then the right.

PDFium gives a page's characters in content-stream order, and many typesetting tools write a
two-column page line by line across both columns. A page is taken to have two columns when a
vertical gutter in its middle is crossed by few of its lines while both sides hold a good part
of its text; lines that cross it (a title, a page number) stay full-width and cut the page into
bands, each read left column first. Any other page keeps PDFium's text as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypdfium2 import PdfTextPage

_MIDDLE = (0.3, 0.7)  # where on the text's width a gutter may lie
_MIN_GUTTER = 0.8  # of the median character height: narrower gaps are word spaces
_MAX_CROSSING = 0.2  # share of rows that may cross the gutter (titles, page numbers)
_MIN_SIDE = 0.2  # share of the characters each column holds at least
_MIN_ROWS = 3  # rows each column holds at least
_FULL, _MIN_FULL = 0.75, 0.4  # at least 40 % of a column's rows run 75 % of its width


@dataclass(frozen=True)
class Char:
    """One character of the page with its loose box in PDF points (y grows upwards)."""

    text: str
    left: float
    bottom: float
    right: float
    top: float

    @property
    def middle_y(self) -> float:
        return (self.bottom + self.top) / 2


def page_chars(textpage: PdfTextPage) -> list[Char]:
    """The page's characters as drawn: PDFium's generated spaces and line breaks left out."""
    import pypdfium2.raw as pdfium_c

    chars = []
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        if code in (0, 0xFFFE, 0xFFFF) or pdfium_c.FPDFText_IsGenerated(textpage, index) == 1:
            continue
        text = chr(code)
        if text in "\r\n":
            continue
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        if right > left and top > bottom:
            chars.append(Char(text, left, bottom, right, top))
    return chars


def column_text(textpage: PdfTextPage) -> str | None:
    """The page's text in reading order if it is laid out in two columns, else None."""
    return ordered_text(page_chars(textpage))


def ordered_text(chars: list[Char]) -> str | None:
    """Two-column text from ``chars``: bands top to bottom, each left column first; else None."""
    inked = [char for char in chars if not char.text.isspace()]
    if not inked:
        return None
    rows = _rows(inked)
    gap = _MIN_GUTTER * median(char.top - char.bottom for char in inked)
    gutter = _gutter(inked, rows, gap)
    if gutter is None:
        return None
    blocks: list[list[Char]] = []
    band: list[Char] = []
    for row in rows:  # top to bottom; a row across the gutter ends a band
        if _crosses(row, gutter, gap):
            blocks += _columns(band, gutter[0])
            blocks.append(row)
            band = []
        else:
            band += row
    blocks += _columns(band, gutter[0])
    spaces = [char for char in chars if char.text.isspace()]
    return "\n".join(_block_text(block, spaces) for block in blocks)


Span = tuple[float, float]  # left and right of a run of characters in one row


def _crosses(row: list[Char], gutter: Span, gap: float) -> bool:
    """Whether a run of the row's characters reaches into the gutter."""
    return any(a < gutter[1] and b > gutter[0] for a, b in _segments(row, gap))


def _rows(chars: list[Char]) -> list[list[Char]]:
    """Characters grouped into rows by their vertical middle, top row first."""
    height = median(char.top - char.bottom for char in chars)
    rows: list[list[Char]] = []
    for char in sorted(chars, key=lambda c: -c.middle_y):
        if rows and abs(rows[-1][-1].middle_y - char.middle_y) <= height / 2:
            rows[-1].append(char)
        else:
            rows.append([char])
    return rows


def _segments(row: list[Char], gap: float) -> list[Span]:
    """The row's runs of characters: gaps narrower than ``gap`` (word spaces) joined."""
    spans: list[list[float]] = []
    for char in sorted(row, key=lambda c: c.left):
        if spans and char.left - spans[-1][1] < gap:
            spans[-1][1] = max(spans[-1][1], char.right)
        else:
            spans.append([char.left, char.right])
    return [(a, b) for a, b in spans]


def _gutter(chars: list[Char], rows: list[list[Char]], gap: float) -> Span | None:
    """A gap in the middle that few rows cross, with a column of prose on each side."""
    start, end = min(c.left for c in chars), max(c.right for c in chars)
    segments = [_segments(row, gap) for row in rows]
    window = _widest_window(
        segments, start + (end - start) * _MIDDLE[0], start + (end - start) * _MIDDLE[1]
    )
    if window is None:
        return None
    x0, x1 = window
    for spans in segments:  # the ragged ends of lines reaching in from either side are not gutter
        for a, b in spans:
            if a < x0 < b < x1:
                x0 = b
            elif x0 < a < x1 < b:
                x1 = a
    left = [c for c in chars if c.right <= x0]
    right = [c for c in chars if c.left >= x1]
    if (
        x1 - x0 >= gap
        and min(len(left), len(right)) >= _MIN_SIDE * len(chars)
        and _filled(left, start, x0)
        and _filled(right, x1, end)
    ):
        return x0, x1
    return None


def _widest_window(segments: list[list[Span]], low: float, high: float) -> Span | None:
    """The widest strip between ``low`` and ``high`` (1-point steps) that few rows ink.

    Few: at most _MAX_CROSSING of the rows, so a title or a page number across the gutter
    does not hide it.
    """
    steps = max(int(high - low), 1)
    inking: list[list[int]] = [[] for _ in range(steps)]
    for number, spans in enumerate(segments):
        for a, b in spans:
            for step in range(max(int(a - low), 0), min(int(b - low), steps - 1) + 1):
                inking[step].append(number)
    limit = _MAX_CROSSING * len(segments)
    counts: dict[int, int] = {}
    best: tuple[int, int] | None = None
    first = 0
    for last in range(steps):
        for number in inking[last]:
            counts[number] = counts.get(number, 0) + 1
        while len(counts) > limit:
            for number in inking[first]:
                counts[number] -= 1
                if not counts[number]:
                    del counts[number]
            first += 1
        if first <= last and (best is None or last - first > best[1] - best[0]):
            best = (first, last)
    return None if best is None else (low + best[0] + 1, low + best[1])


def _filled(side: list[Char], start: float, end: float) -> bool:
    """Whether the side reads as a column of prose: enough rows, many running its width.

    Short entries beside a gap (labels and values of a form, a borderless table) do not.
    """
    rows = _rows(side) if side else []
    full = sum(
        1
        for row in rows
        if max(c.right for c in row) - min(c.left for c in row) >= _FULL * (end - start)
    )
    return len(rows) >= _MIN_ROWS and full >= _MIN_FULL * len(rows)


def _columns(band: list[Char], split: float) -> list[list[Char]]:
    """A band's left column, then its right one (either may be empty and is left out)."""
    sides = [c for c in band if c.right <= split], [c for c in band if c.right > split]
    return [side for side in sides if side]


def _block_text(block: list[Char], spaces: list[Char]) -> str:
    """A block's rows top to bottom, each left to right, spaces put back where they were."""
    left, right = min(c.left for c in block), max(c.right for c in block)
    top, bottom = max(c.top for c in block), min(c.bottom for c in block)
    inside = [
        s for s in spaces if left <= s.left and s.right <= right and bottom <= s.middle_y <= top
    ]
    lines = []
    for row in _rows(block + inside):
        text = "".join(c.text for c in sorted(row, key=lambda c: c.left))
        lines.append(" ".join(text.split()))
    return "\n".join(line for line in lines if line)
