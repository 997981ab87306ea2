"""Extract the plain text of uploads (txt, md, html, csv, pdf, docx, xlsx, pptx, png, jpg).

``load_text`` is what the worker calls: it runs ``extract_text`` in a bounded child process
(ingestion.bounded_parse). The parsers import lazily, so a child loads only the one it needs;
the structured formats have their own modules under ingestion.parsers, and every table comes
out as Markdown rows.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from charset_normalizer import from_bytes

from ingestion.bounded_parse import parse_bounded
from ingestion.parse_progress import ProgressCallback
from ingestion.sections import Section, joined_text, section
from services.common.errors import DocumentParseError, EmptyInputError, UnsupportedFileTypeError
from services.common.filetypes import (
    IMAGE_TYPES,
    SUPPORTED_LIST,
    SUPPORTED_TYPES,
    UNICODE_BOMS,
    ZIP_TYPES,
    check_zip_package,
)

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

    from services.common.settings import ParsingSettings

logger = logging.getLogger(__name__)

# Page furniture and code, not content; the title in <head> is taken on its own.
_HTML_SKIPPED = frozenset(
    {"head", "script", "style", "noscript", "template", "nav", "footer", "aside", "iframe", "svg"}
)
_HTML_BLOCKS = frozenset({
    "p", "div", "br", "li", "tr", "section", "article", "main", "header", "pre",
    "blockquote", "table", "ul", "ol", "dl", "dt", "dd", "figcaption", "hr",
})  # fmt: skip
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_GB_ENCODINGS = frozenset({"gb18030", "gbk", "gb2312"})
_TRAILING_BLANKS = " \t\u3000\xa0"


def decode_text(data: bytes) -> str:
    """Decode text bytes: Unicode BOMs, then UTF-8, then the detected legacy encoding (GBK…)."""
    for bom, encoding in UNICODE_BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    decoded = _decode_detected(data)
    if decoded is not None:
        return decoded
    try:
        # Short Chinese files can be too small for detection; GB18030 is the likely legacy one.
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise DocumentParseError("could not detect the text encoding of the file") from exc


def _decode_detected(data: bytes) -> str | None:
    """Decode with charset-normalizer's pick, preferring GB18030 among equally good guesses."""
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    # Short GBK text is equally plausible as Big5/CP949/EUC-JP; Chinese-first is the better bet.
    tied = [match for match in matches if match.chaos <= best.chaos + 1e-9]
    chosen = next((match for match in tied if match.encoding in _GB_ENCODINGS), best)
    logger.debug("detected text encoding %s", chosen.encoding)
    return str(chosen)


def normalize_text(text: str) -> str:
    """Unify line endings, trim trailing spaces and collapse runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text = text.replace("\x00", "")
    # Per line, not r"[ \t]+\n": that regex scans a run of spaces again from each of its
    # positions when no newline ends it, so 1 MB of spaces took hours.
    text = "\n".join(line.rstrip(_TRAILING_BLANKS) for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def load_text(
    path: Path,
    kind: str,
    limits: ParsingSettings | None = None,
    on_progress: ProgressCallback | None = None,
) -> str:
    """Return the plain text of the document at ``path``, parsed as ``kind`` within limits.

    ``on_progress(done, total)`` hears, from another thread, how many pages are read.
    """
    return joined_text(load_sections(path, kind, limits, on_progress))


def load_sections(
    path: Path,
    kind: str,
    limits: ParsingSettings | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[Section]:
    """The document's pages, sheets or slides (one section for other formats), within limits."""
    if limits is None:
        from services.common.settings import ParsingSettings  # the child never pays for it

        limits = ParsingSettings()
    _check_kind(kind)
    sections = parse_bounded(path, kind, limits, on_progress)
    logger.info(
        "extracted %d characters in %d sections from %s (%s)",
        sum(len(part["text"]) for part in sections), len(sections), path.name, kind,
    )  # fmt: skip
    return sections


def extract_text(path: Path, kind: str, limits: dict[str, float]) -> str:
    """Parse in this process, unbounded: only the child of ``load_text`` should call this."""
    return joined_text(extract_sections(path, kind, limits))


def extract_sections(path: Path, kind: str, limits: dict[str, float]) -> list[Section]:
    """Parse in this process, unbounded: only the parser child should call this.

    ``limits`` is ParsingSettings as a dict: the child starts faster without pydantic.
    """
    _check_kind(kind)
    if kind in ZIP_TYPES:
        check_zip_package(
            path, path.name, limits["max_unpacked_mb"], limits["max_compression_ratio"]
        )
    sections = [
        section(normalize_text(part["text"]), part["location"], part["tabular"])
        for part in _raw_sections(path, kind, limits)
    ]
    sections = [part for part in sections if part["text"]]
    if not sections:
        raise DocumentParseError(
            f"no text could be extracted from '{path.name}' "
            f"(is the {kind} file empty or a scanned image?)"
        )
    return sections


def _raw_sections(path: Path, kind: str, limits: dict[str, float]) -> list[Section]:
    if kind == "pdf":
        from ingestion.parsers.pdf import load_pdf_pages

        pages = load_pdf_pages(path, limits)
        return [section(text, {"page": n}) for n, text in enumerate(pages, 1)]
    if kind in IMAGE_TYPES:
        from ingestion.parsers.ocr import OcrOptions, load_image

        options = OcrOptions.from_limits(limits)
        return [section(load_image(path, limits["max_image_pixels"], options))]
    if kind in ZIP_TYPES:
        return _load_office(path, kind, limits)
    data = _read_bytes(path)
    if not data:
        raise EmptyInputError(f"'{path.name}' is empty")
    if kind == "html":
        return [section(_html_to_text(data))]
    if kind == "csv":
        from ingestion.parsers.spreadsheets import load_csv

        table = load_csv(decode_text(data), path.name, int(limits["max_sheet_rows"]))
        return [section(table, None, tabular=True)]
    return [section(decode_text(data))]


def _check_kind(kind: str) -> None:
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedFileTypeError(
            f"unsupported file type '{kind}'; supported types: {SUPPORTED_LIST}"
        )


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentParseError(f"could not read file: {_reason(exc)}") from exc


def _load_office(path: Path, kind: str, limits: dict[str, float]) -> list[Section]:
    if kind == "xlsx":
        from ingestion.parsers.spreadsheets import load_sheets

        sheets = load_sheets(path, int(limits["max_sheet_rows"]))
        return [section(text, {"sheet": title}, tabular=True) for title, text in sheets]
    if kind == "pptx":
        from ingestion.parsers.slides import load_slides

        slides = load_slides(path, int(limits["max_slides"]))
        return [section(text, {"slide": number}) for number, text in slides]
    from ingestion.parsers.word import load_docx

    return [section(load_docx(path))]


def _html_to_text(data: bytes) -> str:
    """Visible article text of an HTML page: noise removed, blocks on their own lines."""
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(data, "html.parser")
    except MemoryError:
        raise
    except Exception as exc:
        raise DocumentParseError(f"could not read HTML: {_reason(exc)}") from exc
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    lines = (" ".join(line.split()) for line in _visible_text(soup).split("\n"))
    body = "\n".join(lines)
    # Blank lines around headings survive; runs of them are collapsed by normalize_text.
    if title and title not in body:
        body = f"{title}\n\n{body}"
    return body


def _visible_text(soup: BeautifulSoup) -> str:
    """The page's strings in order, with line breaks around blocks and headings.

    One walk with its own stack and no changes to the tree: 100k nested tags cost no
    recursion, and 100k sibling tags no search for each one's place among its siblings.
    """
    from bs4 import CData, NavigableString, PageElement, Tag

    from ingestion.parsers.tables import html_table

    parts: list[str] = []
    # An element still to visit, or a plain str: the text that closes a tag already visited.
    stack: list[PageElement | str] = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, Tag):
            if node.name in _HTML_SKIPPED:
                continue
            if node.name == "table" and (table := html_table(node)):
                parts.append(f"\n\n{table}\n\n")
                continue
            opening, closing = _html_breaks(node.name)
            parts.append(opening)
            stack.append(closing)
            stack.extend(reversed(node.contents))
        elif type(node) in (NavigableString, CData) or not isinstance(node, PageElement):
            parts.append(str(node))  # comments, doctypes and the like are not shown text
    return "".join(parts)


def _html_breaks(name: str) -> tuple[str, str]:
    """What a tag opens and closes with in the text: a heading gets Markdown-style markers,
    which let the chunker keep a heading with its section."""
    if name in _HTML_HEADINGS:
        return "\n\n" + "#" * int(name[1]) + " ", "\n\n"
    if name in _HTML_BLOCKS:
        return "\n", "\n"
    return "", ""
