"""Which document types zhiku reads, decided from the content as well as the name.

The gateway refuses an unsupported or disguised file at upload; the ingestion worker parses what
passed. Both use this one module.
"""

from __future__ import annotations

import codecs
import io
import zipfile
import zlib
from pathlib import Path, PurePath

import filetype
from charset_normalizer import from_bytes

from services.common.errors import (
    DocumentParseError,
    EmptyInputError,
    PayloadTooLargeError,
    UnsupportedFileTypeError,
)

_OOXML = "application/vnd.openxmlformats-officedocument"
CONTENT_TYPES: dict[str, str] = {
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "docx": f"{_OOXML}.wordprocessingml.document",
    "xlsx": f"{_OOXML}.spreadsheetml.sheet",
    "pptx": f"{_OOXML}.presentationml.presentation",
    "png": "image/png",
    "jpg": "image/jpeg",
}
SUPPORTED_TYPES: frozenset[str] = frozenset(CONTENT_TYPES)
# Office files are zips of XML parts: each is checked for zip bombs before a parser opens it.
ZIP_TYPES: frozenset[str] = frozenset({"docx", "xlsx", "pptx"})
# Images are read by OCR; accepted only when both the name and the content say image.
IMAGE_TYPES: frozenset[str] = frozenset({"png", "jpg"})
_EXTENSION_ALIASES = {
    "text": "txt", "markdown": "md", "htm": "html", "xhtml": "html", "xlsm": "xlsx", "jpeg": "jpg",
}  # fmt: skip
_TEXT_TYPES = frozenset({"txt", "md", "html", "csv"})
# Legacy binary Office formats: no maintained pure-Python reader, so a hint instead.
_LEGACY_OFFICE = {"xls": "xlsx", "ppt": "pptx", "doc": "docx"}
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
    # The content wins when it is unmistakably a PDF or an Office file, whatever the name says.
    if sniffed == "pdf" or sniffed in ZIP_TYPES:
        return sniffed
    if sniffed == "zip" and ext in ZIP_TYPES:
        return ext
    if sniffed in IMAGE_TYPES and ext in IMAGE_TYPES:
        return sniffed
    if ext in _LEGACY_OFFICE:
        raise UnsupportedFileTypeError(
            f"'{filename}' is a legacy .{ext} file, which zhiku does not read; save it as "
            f".{_LEGACY_OFFICE[ext]} and upload that (supported types: {SUPPORTED_LIST})"
        )
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


# An Office file is a zip of XML parts; these bound what unpacking and parsing it may cost.
_MAX_ZIP_MEMBERS = 5000
_RATIO_FLOOR_BYTES = 1 * 2**20  # tiny files compress absurdly well and harm nobody
_XML_DECLARATIONS = (b"<!DOCTYPE", b"<!ENTITY")
_SCAN_BLOCK = 1 * 2**20


def check_zip_package(
    source: bytes | Path, name: str, max_unpacked_mb: float, max_ratio: float
) -> None:
    """Refuse a zip bomb or XML entity declarations in a docx/xlsx/pptx before a parser opens it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError):
        return  # not a readable zip: the parser reports it as a damaged file
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_ZIP_MEMBERS:
            raise DocumentParseError(f"'{name}' holds {len(infos)} parts; refused as a zip bomb")
        # zipfile never inflates past the declared sizes, so these bound the real work.
        unpacked = sum(info.file_size for info in infos)
        packed = sum(info.compress_size for info in infos) or 1
        if unpacked > max_unpacked_mb * 2**20:
            raise PayloadTooLargeError(
                f"'{name}' unpacks to {unpacked / 2**20:.0f} MB, over the "
                f"{max_unpacked_mb:.0f} MB limit (ZHIKU_PARSING__MAX_UNPACKED_MB)"
            )
        if unpacked > _RATIO_FLOOR_BYTES and unpacked / packed > max_ratio:
            raise DocumentParseError(
                f"'{name}' is compressed {unpacked / packed:.0f} times, over the limit of "
                f"{max_ratio:.0f} (ZHIKU_PARSING__MAX_COMPRESSION_RATIO); refused as a zip bomb"
            )
        for info in infos:
            if info.filename.endswith((".xml", ".rels")) and _declares_entities(archive, info):
                raise DocumentParseError(
                    f"'{name}' declares a DTD or XML entities in {info.filename}; refused, "
                    "as entity expansion can exhaust memory (Office never writes these)"
                )


def _declares_entities(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether an XML part has <!DOCTYPE or <!ENTITY, read in blocks (a marker may straddle)."""
    keep = max(len(marker) for marker in _XML_DECLARATIONS) - 1
    tail = b""
    try:
        with archive.open(info) as part:
            while block := part.read(_SCAN_BLOCK):
                window = tail + block
                if any(marker in window for marker in _XML_DECLARATIONS):
                    return True
                tail = window[-keep:]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError):
        return False  # damaged or exotic: the parser refuses it with its own message
    return False


def display_name(raw: str | None) -> str:
    """The name to show for an uploaded file: its last path part, no control characters.

    It is only ever shown and stored as text, never used as a path (files are stored under
    generated names); PostgreSQL also refuses NUL in text.
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name in ("", ".", ".."):
        return "unnamed"
    if len(name) <= 255:
        return name
    suffix = PurePath(name).suffix[:16]
    return name[: 255 - len(suffix)] + suffix
