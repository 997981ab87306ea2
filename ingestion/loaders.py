"""Recognise uploaded documents and extract their plain text (txt, md, html, pdf, docx)."""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path, PurePath

import filetype
from bs4 import BeautifulSoup
from charset_normalizer import from_bytes
from langchain_community.document_loaders import Docx2txtLoader, PyPDFLoader

from services.common.errors import DocumentParseError, EmptyInputError, UnsupportedFileTypeError

logger = logging.getLogger(__name__)

SUPPORTED_TYPES: frozenset[str] = frozenset({"txt", "md", "html", "pdf", "docx"})
CONTENT_TYPES: dict[str, str] = {
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_EXTENSION_ALIASES = {"text": "txt", "markdown": "md", "htm": "html", "xhtml": "html"}
_TEXT_TYPES = frozenset({"txt", "md", "html"})
_SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_TYPES))

# Page furniture and code, not content.
_HTML_NOISE = ["script", "style", "noscript", "template", "nav", "footer", "aside", "iframe", "svg"]
_HTML_BLOCKS = [
    "p", "div", "br", "li", "tr", "section", "article", "main", "header", "pre",
    "blockquote", "table", "ul", "ol", "dl", "dt", "dd", "figcaption", "hr",
]  # fmt: skip
_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_UNICODE_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_GB_ENCODINGS = frozenset({"gb18030", "gbk", "gb2312"})
# C0 controls that never occur in real text (tab, newlines, form feed and ESC do).
_CONTROL_BYTES = frozenset(set(range(32)) - {9, 10, 11, 12, 13, 27})


def detect_type(filename: str, head: bytes) -> str:
    """Return the document kind (one of SUPPORTED_TYPES) from the first bytes and the name."""
    if not head:
        raise EmptyInputError(f"'{filename}' is empty")
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    ext = _EXTENSION_ALIASES.get(suffix, suffix)
    sniffed = _sniff(head)
    # The content wins when it is unmistakably a PDF or a Word file, whatever the name says.
    if sniffed in ("pdf", "docx") or (sniffed == "zip" and ext == "docx"):
        return "docx" if sniffed == "zip" else sniffed
    if ext not in SUPPORTED_TYPES:
        shown = f"'.{suffix}'" if suffix else "(no extension)"
        raise UnsupportedFileTypeError(
            f"unsupported file type {shown} for '{filename}'; supported types: {_SUPPORTED_LIST}"
        )
    if ext in _TEXT_TYPES:
        if sniffed is None and _looks_like_text(head):
            return ext
        raise UnsupportedFileTypeError(
            f"'{filename}' is named .{suffix} but its content is binary, not text"
        )
    what = f"looks like {sniffed}" if sniffed else "is not recognised"
    raise UnsupportedFileTypeError(f"'{filename}' is named .{suffix} but its content {what}")


def _sniff(head: bytes) -> str | None:
    """Name the binary format the magic bytes announce, or None for no known format."""
    # Readers accept junk before the header within the first KiB, so do we.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    guess = filetype.guess(head)
    return str(guess.extension) if guess is not None else None


def _looks_like_text(head: bytes) -> bool:
    """Whether these (possibly truncated) first bytes are text in some encoding."""
    if b"\x00" in head and not head.startswith(tuple(bom for bom, _ in _UNICODE_BOMS)):
        return False
    if any(head.startswith(bom) for bom, _ in _UNICODE_BOMS):
        return True
    controls = sum(1 for byte in head if byte in _CONTROL_BYTES)
    if controls > len(head) * 0.05:
        return False
    # Incremental decoders tolerate a character cut in half at the end of the head.
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return True
        except UnicodeDecodeError:
            continue
    return from_bytes(head).best() is not None


def decode_text(data: bytes) -> str:
    """Decode text bytes: Unicode BOMs, then UTF-8, then the detected legacy encoding (GBK…)."""
    for bom, encoding in _UNICODE_BOMS:
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
    text = re.sub(r"[ \t\u3000\xa0]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def load_text(path: Path, kind: str) -> str:
    """Return the plain text of the document at ``path``, parsed as ``kind``."""
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedFileTypeError(
            f"unsupported file type '{kind}'; supported types: {_SUPPORTED_LIST}"
        )
    if kind == "pdf":
        raw = _load_pdf(path)
    elif kind == "docx":
        raw = _load_docx(path)
    else:
        data = _read_bytes(path)
        if not data:
            raise EmptyInputError(f"'{path.name}' is empty")
        raw = _html_to_text(data) if kind == "html" else decode_text(data)
    text = normalize_text(raw)
    if not text:
        raise DocumentParseError(
            f"no text could be extracted from '{path.name}' "
            f"(is the {kind} file empty or a scanned image?)"
        )
    logger.info("extracted %d characters from %s (%s)", len(text), path.name, kind)
    return text


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentParseError(f"could not read file: {_reason(exc)}") from exc


def _load_pdf(path: Path) -> str:
    try:
        pages = PyPDFLoader(str(path), mode="page").load()
    # pypdf raises many unrelated types (PdfReadError, ValueError, KeyError…) on damaged files.
    except Exception as exc:
        raise DocumentParseError(f"could not read PDF: {_reason(exc)}") from exc
    return "\n\n".join(page.page_content for page in pages)


def _load_docx(path: Path) -> str:
    try:
        docs = Docx2txtLoader(path).load()
    # A broken zip gives BadZipFile, a zip without word/document.xml gives KeyError, and so on.
    except Exception as exc:
        raise DocumentParseError(f"could not read DOCX: {_reason(exc)}") from exc
    return "\n\n".join(doc.page_content for doc in docs)


def _html_to_text(data: bytes) -> str:
    """Visible article text of an HTML page: noise removed, blocks on their own lines."""
    try:
        soup = BeautifulSoup(data, "html.parser")
    except Exception as exc:
        raise DocumentParseError(f"could not read HTML: {_reason(exc)}") from exc
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.head is not None:
        soup.head.decompose()
    for tag in soup.find_all(_HTML_NOISE):
        tag.decompose()
    for tag in soup.find_all(_HTML_HEADINGS):
        # Markdown-style markers let the chunker keep a heading with its section.
        tag.insert(0, "#" * int(tag.name[1]) + " ")
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    lines = (re.sub(r"\s+", " ", line).strip() for line in soup.get_text().split("\n"))
    body = "\n".join(lines)
    # Blank lines around headings survive; runs of them are collapsed by normalize_text.
    if title and title not in body:
        body = f"{title}\n\n{body}"
    return body
