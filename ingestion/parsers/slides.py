"""Presentations (pptx): each slide's title, text, tables and speaker notes, slide by slide.

Each slide opens with a Markdown heading, so the chunker starts a chunk at a slide and keeps a
slide's sentences together; its text frames keep their paragraphs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsers.tables import markdown_table
from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from pptx.slide import Slide


def load_pptx(path: Path, max_slides: int) -> str:
    """The text of every slide, in order."""
    return "\n\n".join(text for _number, text in load_slides(path, max_slides))


def load_slides(path: Path, max_slides: int) -> list[tuple[int, str]]:
    """Each slide that has text, as its number (from 1) and its text."""
    from pptx import Presentation

    try:
        deck = Presentation(str(path))
        count = len(deck.slides)
        if count > max_slides:
            raise DocumentParseError(
                f"'{path.name}' has {count} slides, over the limit of {max_slides} "
                "(ZHIKU_PARSING__MAX_SLIDES)"
            )
        parts = [(number, slide_text(number, slide)) for number, slide in enumerate(deck.slides, 1)]
    except (DocumentParseError, MemoryError):
        raise
    # A damaged zip or part raises BadZipFile, KeyError, XMLSyntaxError…
    except Exception as exc:
        raise DocumentParseError(f"could not read PPTX: {exc or type(exc).__name__}") from exc
    return [(number, text) for number, text in parts if text]


def slide_text(number: int, slide: Slide) -> str:
    """One slide: a heading with its title, its shapes top to bottom, then its notes."""
    title_shape = slide.shapes.title
    title = _one_line(title_shape.text_frame.text) if title_shape is not None else ""
    blocks: list[str] = []
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        blocks.extend(_shape_blocks(shape))
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            blocks.append("Notes: " + _paragraphs(notes))
    heading = f"## Slide {number}: {title}" if title else f"## Slide {number}"
    return "\n\n".join([heading, *blocks]) if blocks or title else ""


def _shape_blocks(shape: Any) -> list[str]:
    """Text blocks of one shape; a group gives those of its members."""
    if shape.has_text_frame and shape.text_frame.text.strip():
        return [_paragraphs(shape.text_frame)]
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = ([cell.text for cell in row.cells] for row in shape.table.rows)
        table = markdown_table(rows)
        return [table] if table else []
    if shape.shape_type is not None and hasattr(shape, "shapes"):  # a group
        return [block for member in _reading_order(shape.shapes) for block in _shape_blocks(member)]
    return []


def _reading_order(shapes: Any) -> list[Any]:
    """Top to bottom, then left to right; shapes without a position keep their place last."""
    return sorted(shapes, key=lambda s: (s.top is None, s.top or 0, s.left or 0))


def _paragraphs(frame: Any) -> str:
    lines = (_one_line(paragraph.text) for paragraph in frame.paragraphs)
    return "\n".join(line for line in lines if line)


def _one_line(text: str) -> str:
    return " ".join(text.split())
