"""Answer in the script of the question: Traditional Chinese questions get Traditional answers."""

from __future__ import annotations

from functools import lru_cache

from opencc import OpenCC

from services.common.answers import contains_cjk


@lru_cache(maxsize=2)
def _converter(config: str) -> OpenCC:
    # Loading a conversion table takes a while: once per process and direction.
    return OpenCC(config)


@lru_cache(maxsize=256)
def is_traditional(text: str) -> bool:
    """Chinese text that Simplified conversion would change: written in Traditional characters."""
    return contains_cjk(text) and _converter("t2s").convert(text) != text


def to_script_of(question: str, text: str) -> str:
    """``text`` in Traditional characters when the question is; otherwise unchanged."""
    return _converter("s2t").convert(text) if is_traditional(question) else text
