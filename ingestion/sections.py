"""A document as sections: the text of each page, sheet or slide, with where it was read.

The parser child sends these as JSON; ingestion.located_chunks splits them into chunks that keep
their section's location. Nothing heavy is imported here: the child loads this module.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Section(TypedDict):
    """One page, sheet or slide (or a whole document without any): where, and its text."""

    location: dict[str, Any] | None
    text: str
    tabular: bool  # a sheet or a CSV: its chunks say which rows they hold


def section(text: str, location: dict[str, Any] | None = None, tabular: bool = False) -> Section:
    return Section(location=location, text=text, tabular=tabular)


def joined_text(sections: list[Section]) -> str:
    """The document's whole text: its sections separated by a blank line."""
    return "\n\n".join(part["text"] for part in sections if part["text"])
