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

MIN_SUPPORT = 0.3
MAX_HOLD_CHARS = 80


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
