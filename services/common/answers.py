"""What every service agrees on about answers: the not-found reply and citation markers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.common.schemas import AnswerCheck, SentenceCheck
from services.common.script import contains_cjk, fold

NOT_FOUND_ZH = "文档中没有找到相关答案。"
NOT_FOUND_EN = "The documents do not contain the answer."

_MARKER = re.compile(r"\[(\d{1,3})\]")


def not_found_message(question: str) -> str:
    """The reply when the documents hold no answer, in the question's language."""
    return NOT_FOUND_ZH if contains_cjk(question) else NOT_FOUND_EN


def is_not_found(answer: str) -> bool:
    """The reply is the not-found sentence, in either language and either Chinese script."""
    return fold(answer.strip()) in (fold(NOT_FOUND_ZH), fold(NOT_FOUND_EN))


def cited_indexes(answer: str) -> list[int]:
    """The distinct n of every [n] in the answer, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in _MARKER.finditer(answer):
        seen.setdefault(int(match.group(1)), None)
    return list(seen)


_CITATION = re.compile(r"\[\d+\]")
_UNIT = re.compile(r"[a-z][a-z'\-]{2,}|\d+(?:\.\d+)?|[\u3400-\u4dbf\u4e00-\u9fff]+")
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


def content_units(text: str) -> set[str]:
    """Words, numbers, CJK characters and CJK bigrams that carry meaning in ``text``.

    Traditional characters count as their Simplified forms: a Traditional answer copied from a
    Simplified passage is as supported as the Simplified one.
    """
    units: set[str] = set()
    for match in _UNIT.finditer(_CITATION.sub(" ", fold(text))):
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


def _best_support(text: str, passages: list[str]) -> tuple[int, float]:
    """The 1-based passage carrying most of ``text``, and that share."""
    if not content_units(text):
        return 1, 0.0
    scores = [support_ratio(text, [p]) for p in passages]
    best = max(range(len(scores)), key=scores.__getitem__)
    return best + 1, scores[best]


def attribute(answer: str, passages: list[str], threshold: float = 0.5) -> dict[int, int]:
    """Each valid marker [n] → the 1-based passage that backs its sentences.

    That is n itself when passage n carries the claim, else the passage that does (small models
    often number their sources wrongly). An answer with no marker is attributed to the passage
    supporting it, if any does.
    """
    if not passages:
        return {}
    cited = [n for n in cited_indexes(answer) if 1 <= n <= len(passages)]
    if not cited:
        best, score = _best_support(answer, passages)
        return {best: best} if score >= threshold else {}
    sentences = claims(answer)
    mapping: dict[int, int] = {}
    for n in cited:
        claim = " ".join(text for text, markers in sentences if n in markers) or answer
        if support_ratio(claim, [passages[n - 1]]) >= threshold:
            mapping[n] = n
            continue
        best, score = _best_support(claim, passages)
        mapping[n] = best if score >= threshold else n
    return mapping


_SENTENCE_END = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+|\n+")


def best_quote(answer: str, passage: str, max_chars: int = 240) -> str:
    """The passage sentence sharing most with the answer: the span a reader should check."""
    sentences = [s.strip() for s in _SENTENCE_END.split(passage) if s and s.strip()]
    if not sentences:
        return passage[:max_chars]
    wanted = content_units(answer)
    best = max(sentences, key=lambda s: len(wanted & content_units(s)))
    return best[:max_chars]


SUPPORTED_AT = 0.5
_ANSWER_SENTENCE = re.compile(r"(?<=[。！？!?])\s*|(?<=[.;])\s+|\n+")


_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}\])+")


def claims(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with their [n]; a marker standing after the full stop joins its sentence."""
    result: list[tuple[str, list[int]]] = []
    for piece in (p.strip() for p in _ANSWER_SENTENCE.split(answer)):
        lead = _LEADING_MARKERS.match(piece)
        if lead and result:
            text, before = result[-1]
            extra = [m for m in cited_indexes(lead.group()) if m not in before]
            result[-1] = (f"{text} {lead.group().strip()}", before + extra)
            piece = piece[lead.end() :].strip()
        if piece and content_units(piece):
            result.append((piece, cited_indexes(piece)))
    return result


def check_answer(
    answer: str, passages: list[str], mapping: dict[int, int] | None = None
) -> AnswerCheck:
    """Per sentence: its [n], and whether their passages (or all, if none) carry its words."""
    mapping = attribute(answer, passages) if mapping is None else mapping
    result = AnswerCheck(
        unknown_markers=[n for n in cited_indexes(answer) if not 1 <= n <= len(passages)],
        remapped={n: p for n, p in mapping.items() if n != p},
    )
    for sentence, markers in claims(answer):
        valid = [n for n in markers if 1 <= n <= len(passages)]
        sources = [passages[mapping.get(n, n) - 1] for n in valid] or passages
        ratio = support_ratio(sentence, sources) if sources else 0.0
        supported = ratio >= SUPPORTED_AT
        result.sentences.append(
            SentenceCheck(
                text=sentence, citations=valid, support=round(ratio, 3), supported=supported
            )
        )
        result.unsupported += 0 if supported else 1
    return result
