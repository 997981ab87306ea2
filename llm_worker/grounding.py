"""A check that the answer's first sentence comes from the passages, before anything is streamed.

Small models answer from their own knowledge (and even cite [1] for it) when the passages are
unrelated. Holding back the first sentence and measuring how much of its wording occurs in the
passages catches that case at the cost of a short delay before the first token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_CITATION = re.compile(r"\[\d+\]")
_UNIT = re.compile(r"[a-z][a-z'\-]{2,}|\d+(?:\.\d+)?|[\u3400-\u4dbf\u4e00-\u9fff]+")
_SENTENCE_END = re.compile(r"[。！？!?\n]|\.\s")
_STOP_EN = frozenset(
    {
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "has",
        "have",
        "had",
        "with",
        "from",
        "that",
        "this",
        "these",
        "those",
        "its",
        "their",
        "there",
        "not",
        "but",
        "can",
        "may",
        "will",
        "would",
        "should",
        "could",
        "into",
        "onto",
        "than",
        "then",
        "also",
        "per",
        "about",
        "which",
        "what",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "yes",
    }
)
_STOP_ZH = frozenset("的是了在和有我你他她它这那也就都而及与或一个为以中对吗呢吧啊")

MIN_SUPPORT = 0.3
MAX_HOLD_CHARS = 80


def content_units(text: str) -> set[str]:
    """Words, numbers, CJK characters and CJK bigrams that carry meaning in ``text``."""
    units: set[str] = set()
    for match in _UNIT.finditer(_CITATION.sub(" ", text.lower())):
        token = match.group()
        if token[0] >= "\u3400":
            units.update(ch for ch in token if ch not in _STOP_ZH)
            units.update(token[i : i + 2] for i in range(len(token) - 1))
        elif token not in _STOP_EN:
            units.add(token)
    return units


def support_ratio(answer: str, passages: Iterable[str]) -> float:
    """Share of the answer's content units that occur in the passages (1.0 when it has none)."""
    units = content_units(answer)
    if not units:
        return 1.0
    known: set[str] = set()
    for text in passages:
        known |= content_units(text)
    return len(units & known) / len(units)


def _first_sentence_done(text: str) -> bool:
    return len(text) >= MAX_HOLD_CHARS or _SENTENCE_END.search(text.strip()) is not None


def guard_first_sentence(
    pieces: Iterator[str], passages: list[str], not_found: str
) -> Iterator[str]:
    """Pass ``pieces`` through, or only ``not_found`` when the first sentence is unsupported."""
    held: list[str] = []
    for piece in pieces:
        held.append(piece)
        if _first_sentence_done("".join(held)):
            break
    first = "".join(held)
    if not first.strip().startswith(not_found) and support_ratio(first, passages) < MIN_SUPPORT:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stop generating an answer nobody will see
        yield not_found
        return
    yield from held
    yield from pieces
