"""Recognise uploaded documents and extract their plain text (txt, md, html, pdf, docx)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

from bs4 import BeautifulSoup
from charset_normalizer import from_bytes
from langchain_community.document_loaders import Docx2txtLoader

from ingestion import pdf_extract
from services.common.errors import DocumentParseError, EmptyInputError, UnsupportedFileTypeError
from services.common.filetypes import SUPPORTED_LIST, SUPPORTED_TYPES, UNICODE_BOMS, check_docx
from services.common.settings import ParsingSettings

logger = logging.getLogger(__name__)

# Page furniture and code, not content.
_HTML_NOISE = ["script", "style", "noscript", "template", "nav", "footer", "aside", "iframe", "svg"]
_HTML_BLOCKS = [
    "p", "div", "br", "li", "tr", "section", "article", "main", "header", "pre",
    "blockquote", "table", "ul", "ol", "dl", "dt", "dd", "figcaption", "hr",
]  # fmt: skip
_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_GB_ENCODINGS = frozenset({"gb18030", "gbk", "gb2312"})


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
    text = re.sub(r"[ \t\u3000\xa0]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def load_text(path: Path, kind: str, limits: ParsingSettings | None = None) -> str:
    """Return the plain text of the document at ``path``, parsed as ``kind`` within limits."""
    limits = limits or ParsingSettings()
    if kind not in SUPPORTED_TYPES:
        raise UnsupportedFileTypeError(
            f"unsupported file type '{kind}'; supported types: {SUPPORTED_LIST}"
        )
    if kind == "pdf":
        raw = _load_pdf(path, limits)
    elif kind == "docx":
        check_docx(path, path.name, limits.max_unpacked_mb, limits.max_compression_ratio)
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


def _load_pdf(path: Path, limits: ParsingSettings) -> str:
    """Pages extracted by a child process with a time limit, a memory cap and a page limit."""
    args = [str(path), str(limits.pdf_max_pages), str(limits.pdf_max_memory_mb)]
    try:
        proc = subprocess.run(
            [sys.executable, pdf_extract.__file__, *args],
            capture_output=True,
            timeout=limits.pdf_timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DocumentParseError(
            f"reading the PDF took longer than {limits.pdf_timeout_s:g} s "
            "(ZHIKU_PARSING__PDF_TIMEOUT_S); refused"
        ) from exc
    if proc.returncode in (pdf_extract.OK, pdf_extract.FAILED) and proc.stdout:
        result = json.loads(proc.stdout)
        if "error" in result:
            raise DocumentParseError(str(result["error"]))
        return "\n\n".join(result["pages"])
    logger.warning("PDF child exited %d: %s", proc.returncode, proc.stderr[-500:])
    raise DocumentParseError(
        f"reading the PDF needed more than {limits.pdf_max_memory_mb} MB "
        "(ZHIKU_PARSING__PDF_MAX_MEMORY_MB) or crashed the parser; refused"
    )


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
