"""A check that the answer's first sentence comes from the passages, before anything is streamed.

Small models answer from their own knowledge (and even cite [1] for it) when the passages are
unrelated. Holding back the first sentence and measuring how much of its wording occurs in the
passages catches that case at the cost of a short delay before the first token.

The share of its words the sentence needs (ZHIKU_LLM__GROUNDING_SUPPORT, default 0.7) was chosen
on raw answers (the hold off, ``python -m bench.grounding_data``, seed 2): of 42 questions the
knowledge base cannot answer, 40 % were refused at 0.3 and 71 % at 0.7, with 5 % of 40 answerable
ones (a right answer worded partly its own way); past 0.7 the answerable cost doubles for 2 points.
Words are compared with Traditional folded to Simplified, so the script of a copy does not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.common.answers import support_ratio
from services.common.script import fold

_SENTENCE_END = re.compile(r"[。！？!?\n]|\.\s")
# A list marker opening the answer ("1. ", "1、", "(1)", "- "): no sentence, no content to check.
_LIST_MARK = re.compile(r"^\s*(?:[(（]?\d{1,2}[.．、)）]|[-*•])\s*")

MAX_HOLD_CHARS = 80


def _body(text: str) -> str:
    return _LIST_MARK.sub("", text, count=1)


def _first_sentence_done(text: str) -> bool:
    body = _body(text).strip()
    return len(body) >= MAX_HOLD_CHARS or _SENTENCE_END.search(body) is not None


def held_sentence(answer: str) -> str:
    """The part of a whole ``answer`` the hold would judge: its first sentence, list mark cut."""
    end = next((i for i in range(1, len(answer) + 1) if _first_sentence_done(answer[:i])), None)
    return _body(answer[:end]).strip()


def guard_first_sentence(
    pieces: Iterator[str], passages: list[str], not_found: str, min_support: float
) -> Iterator[str]:
    """Pass ``pieces`` through, or only ``not_found`` when the first sentence is unsupported.

    A first sentence that starts with ``not_found`` passes as it is.
    """
    held: list[str] = []
    for piece in pieces:
        held.append(piece)
        if _first_sentence_done("".join(held)):
            break
    first = "".join(held)
    body = _body(first).strip()
    said = fold(body).startswith(fold(not_found))
    if not said and support_ratio(body, passages) < min_support:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # stop generating an answer nobody will see
        yield not_found
        return
    yield from held
    yield from pieces
