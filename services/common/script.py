"""Chinese scripts: answers in the script of the question, and text compared across scripts.

A Traditional Chinese question gets a Traditional answer; words are matched after folding both
sides to Simplified (search, the grounding check, citations), so the script never decides a match.
"""

from __future__ import annotations

import re
from functools import lru_cache

from opencc import OpenCC

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")


def contains_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


@lru_cache(maxsize=2)
def _converter(config: str) -> OpenCC:
    # Loading a conversion table takes a while: once per process and direction.
    return OpenCC(config)


def to_simplified(text: str) -> str:
    """``text`` with Traditional characters converted to Simplified; anything else unchanged."""
    return _converter("t2s").convert(text) if contains_cjk(text) else text


@lru_cache(maxsize=256)
def is_traditional(text: str) -> bool:
    """Chinese text that Simplified conversion would change: written in Traditional characters."""
    return to_simplified(text) != text


def to_script_of(question: str, text: str) -> str:
    """``text`` in Traditional characters when the question is; otherwise unchanged."""
    return _converter("s2t").convert(text) if is_traditional(question) else text


def fold(text: str) -> str:
    """``text`` as it is compared: Traditional characters folded to Simplified, lowercase."""
    return to_simplified(text).lower()
