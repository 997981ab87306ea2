"""A check that the answer's first sentence comes from the passages, before anything is streamed.

Small models answer from their own knowledge (and even cite [1] for it) when the passages are
unrelated. Holding back the first sentence and measuring how much of its wording occurs in the
passages catches that case at the cost of a short delay before the first token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.common.answers import support_ratio

_SENTENCE_END = re.compile(r"[。！？!?\n]|\.\s")
# A list marker opening the answer ("1. ", "1、", "(1)", "- "): no sentence, no content to check.
_LIST_MARK = re.compile(r"^\s*(?:[(（]?\d{1,2}[.．、)）]|[-*•])\s*")

MIN_SUPPORT = 0.3
MAX_HOLD_CHARS = 80


def _body(text: str) -> str:
    return _LIST_MARK.sub("", text, count=1)


def _first_sentence_done(text: str) -> bool:
    body = _body(text).strip()
    return len(body) >= MAX_HOLD_CHARS or _SENTENCE_END.search(body) is not None


def guard_first_sentence(
    pieces: Iterator[str], passages: list[str], not_found: str, also_fine: tuple[str, ...] = ()
) -> Iterator[str]:
    """Pass ``pieces`` through, or only ``not_found`` when the first sentence is unsupported.

    A first sentence that starts with ``not_found`` or one of ``also_fine`` passes as it is.
    """
    held: list[str] = []
    for piece in pieces:
        held.append(piece)
        if _first_sentence_done("".join(held)):
            break
    first = "".join(held)
    body = _body(first).strip()
    said = body.startswith((not_found, *also_fine))
    if not said and support_ratio(body, passages) < MIN_SUPPORT:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stop generating an answer nobody will see
        yield not_found
        return
    yield from held
    yield from pieces
