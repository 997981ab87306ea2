"""Clean PDF page text: repeated headers, footers and page numbers out; wrapped lines joined.

A line repeated at the top, or at the bottom, of most pages (digits aside, so "第 3 页" repeats
too) is page furniture, not content. A line that runs to the right margin was wrapped by the layout,
not ended by the author: it is joined to the next, with no space between Chinese characters
and a space between English words (a hyphen at the end of a line is kept: "forty-one").
"""

from __future__ import annotations

import re
from collections import Counter

_EDGE_LINES = 2  # how many lines at the top and at the bottom of a page may be furniture
_MIN_PAGES = 3
_MAX_FURNITURE = 60  # characters: a running header or footer is one short line
_PAGE_NUMBER = re.compile(
    r"^[-–—\s]*(?:第\s*\d+\s*页(?:\s*[/，,]?\s*共\s*\d+\s*页)?|(?:page\s*)?\d+(?:\s*(?:/|of)\s*\d+)?)"
    r"[-–—\s]*$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")
_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(rf"[{_CJK}\u3000-\u303f\uff00-\uffef]")
_CJK_END = re.compile(rf"[{_CJK}，、（《“]$")
_CJK_START = re.compile(rf"^[{_CJK}，、。；：！？）》”]")
_SENTENCE_END = re.compile(r"[.!?:;。！？；：…]$")
_LIST_START = re.compile(
    r"^(?:[-•·▪*]\s|\(?\d{1,3}[.)、]|[（(][一二三四五六七八九十\d]+[）)]|第.{1,4}[章节条])"
)
_WRAP_SHARE = 0.8  # a line this close to the page's longest was wrapped at the margin


def clean_pages(pages: list[str]) -> list[str]:
    """Each page's text without furniture, its wrapped lines joined."""
    split = [[line.strip() for line in page.splitlines()] for page in pages]
    furniture = _repeated_edges(split)
    return [join_wrapped(_without_furniture(lines, furniture)) for lines in split]


def _key(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.split()))


def _edges(lines: list[str]) -> dict[int, str]:
    """The short lines at the top and the bottom of a page: their index and which edge."""
    content = [i for i, line in enumerate(lines) if line]
    edge = _EDGE_LINES if len(content) > 2 * _EDGE_LINES else 1
    sides = {i: "bottom" for i in content[-edge:]} | {i: "top" for i in content[:edge]}
    return {i: side for i, side in sides.items() if len(lines[i]) <= _MAX_FURNITURE}


def _repeated_edges(pages: list[list[str]]) -> set[tuple[str, str]]:
    """Lines found at the same edge of at least half of the pages (three or more).

    The edge counts: a running header stays at the top, while a paragraph may open one page
    and close another.
    """
    if len(pages) < _MIN_PAGES:
        return set()
    counts = Counter(
        key
        for lines in pages
        for key in {(side, _key(lines[i])) for i, side in _edges(lines).items()}
    )
    return {key for key, count in counts.items() if count >= max(_MIN_PAGES, len(pages) / 2)}


def _without_furniture(lines: list[str], furniture: set[tuple[str, str]]) -> list[str]:
    """The page's lines less the edge lines that repeat across pages or are a page number."""
    drop = {
        i
        for i, side in _edges(lines).items()
        if (side, _key(lines[i])) in furniture or _PAGE_NUMBER.match(lines[i]) is not None
    }
    return [line for i, line in enumerate(lines) if i not in drop]


def join_wrapped(lines: list[str]) -> str:
    """Lines joined where the layout, not the author, broke them."""
    widths = [_width(line) for line in lines if line and not line.startswith("|")]
    full = max(widths, default=0) * _WRAP_SHARE
    out: list[str] = []
    for line in lines:
        previous = out[-1] if out else ""
        if previous and line and _wrapped(previous, line, full):
            out[-1] = _join(previous, line)
        else:
            out.append(line)
    return "\n".join(out)


def _wrapped(previous: str, line: str, full: float) -> bool:
    if previous.startswith(("|", "#")) or line.startswith("|") or _width(previous) < full:
        return False
    if _LIST_START.match(line) or _SENTENCE_END.search(previous):
        return False
    return previous[-1].isalnum() or previous.endswith((",", "-", "，", "、", "（", "《", "“"))


def _width(line: str) -> int:
    """Columns the line takes: a Chinese character is as wide as two Latin ones."""
    return len(line) + len(_CJK_CHAR.findall(line))


def _join(previous: str, line: str) -> str:
    if _CJK_END.search(previous) and _CJK_START.match(line):
        return previous + line
    if previous.endswith("-"):  # "forty-one" or "exam-ple": the hyphen stays, no space
        return previous + line
    return f"{previous} {line}"
