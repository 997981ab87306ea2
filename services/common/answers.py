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
