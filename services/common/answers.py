"""What every service agrees on about answers: the not-found reply and citation markers."""

from __future__ import annotations

import re

NOT_FOUND_ZH = "文档中没有找到相关答案。"
NOT_FOUND_EN = "The documents do not contain the answer."

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MARKER = re.compile(r"\[(\d{1,3})\]")


def contains_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


def not_found_message(question: str) -> str:
    """The reply when the documents hold no answer, in the question's language."""
    return NOT_FOUND_ZH if contains_cjk(question) else NOT_FOUND_EN


def cited_indexes(answer: str) -> list[int]:
    """The distinct n of every [n] in the answer, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(answer):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


def _grams(text: str) -> set[str]:
    """Character bigrams of CJK runs and lowercased words otherwise: script-neutral overlap."""
    grams: set[str] = set()
    for token in re.findall(r"[\u3400-\u9fff\uf900-\ufaff]+|[A-Za-z0-9][A-Za-z0-9.,'-]*", text):
        if contains_cjk(token):
            grams.update(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        else:
            grams.add(token.lower().strip(".,'-"))
    grams.discard("")
    return grams


def support(answer: str, passage: str) -> float:
    """Share of the answer's bigrams/words that the passage contains (0..1)."""
    wanted = _grams(_MARKER.sub(" ", answer))
    if not wanted:
        return 0.0
    return len(wanted & _grams(passage)) / len(wanted)


def attribute(answer: str, passages: list[str], threshold: float = 0.5) -> list[int]:
    """The 1-based passages the answer cites, or, when it cites none, the one that supports it."""
    cited = [n for n in cited_indexes(answer) if 1 <= n <= len(passages)]
    if cited or not passages:
        return cited
    scores = [support(answer, p) for p in passages]
    best = max(range(len(passages)), key=scores.__getitem__)
    return [best + 1] if scores[best] >= threshold else []


_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+|\n+")


def best_quote(answer: str, passage: str, max_chars: int = 240) -> str:
    """The passage sentence sharing most with the answer: the span a reader should check."""
    sentences = [s.strip() for s in _SENTENCE_END.split(passage) if s and s.strip()]
    if not sentences:
        return passage[:max_chars]
    wanted = _grams(_MARKER.sub(" ", answer))
    best = max(sentences, key=lambda s: len(wanted & _grams(s)))
    return best[:max_chars]
