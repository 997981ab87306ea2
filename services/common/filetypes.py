"""Which document types zhiku reads, decided from the content as well as the name.

The gateway refuses an unsupported or disguised file at upload; the ingestion worker parses what
passed. Both use this one module.
"""

from __future__ import annotations

import codecs
from pathlib import PurePath

import filetype
from charset_normalizer import from_bytes

from services.common.errors import EmptyInputError, UnsupportedFileTypeError

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
SUPPORTED_LIST = ", ".join(sorted(SUPPORTED_TYPES))

UNICODE_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
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
            f"unsupported file type {shown} for '{filename}'; supported types: {SUPPORTED_LIST}"
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
    if b"\x00" in head and not head.startswith(tuple(bom for bom, _ in UNICODE_BOMS)):
        return False
    if any(head.startswith(bom) for bom, _ in UNICODE_BOMS):
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
