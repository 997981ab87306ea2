"""Which document types zhiku reads, decided from the content as well as the name."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from services.common.errors import EmptyInputError, UnsupportedFileTypeError

CONTENT_TYPES = {
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
EXTENSIONS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
SUPPORTED = ", ".join(sorted(EXTENSIONS))


def _looks_binary(head: bytes) -> bool:
    """NUL bytes or many control characters: not a text file, whatever its name says."""
    sample = head[:8192]
    if b"\x00" in sample and not sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return bool(sample) and controls / len(sample) > 0.1


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def detect_type(filename: str, data: bytes) -> str:
    """The document kind (txt, md, html, pdf, docx) or a clear error."""
    if not data:
        raise EmptyInputError(f"{filename} is empty")
    ext = PurePath(filename).suffix.lower()
    kind = EXTENSIONS.get(ext)
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return "docx"
        raise UnsupportedFileTypeError(f"{filename} is a zip archive, not a Word document")
    if kind in (None, "pdf", "docx"):
        found = f"a file with extension '{ext or '(none)'}'"
        if kind in ("pdf", "docx"):
            found = f"named {ext} but its content is not {kind.upper()}"
        raise UnsupportedFileTypeError(f"{filename}: {found}; supported: {SUPPORTED}")
    if _looks_binary(data):
        raise UnsupportedFileTypeError(f"{filename} is named {ext} but holds binary data")
    return kind
