"""Split document text into overlapping chunks, breaking at Chinese and English sentence ends."""

from __future__ import annotations

import logging
import re

from langchain_text_splitters import RecursiveCharacterTextSplitter

logger = logging.getLogger(__name__)

# Characters that end a Chinese sentence, and closing quotes/brackets that may follow them.
_ZH_ENDS = "。！？；…"
_ZH_CLOSERS = "”’」』）》"

# "Dr. Marsh" is not a sentence end; lookbehinds must be fixed-width, hence one per word.
_ABBREVIATIONS = ("Dr", "Mr", "Mrs", "Ms", "Prof", "St", "vs", "etc", "e.g", "i.e", "No", "Fig")
_NOT_ABBREVIATION = "".join(rf"(?<!\b{re.escape(word)}\.)" for word in _ABBREVIATIONS)

# The line under a Markdown table's header row: | --- | :-: |
TABLE_SEPARATOR = re.compile(r"\|(?:\s*:?-{3,}:?\s*\|)+")

# Coarsest first; the splitter only falls back to a finer one for pieces still too long.
# All are regexes; the zero-width lookarounds split *after* a mark, so the punctuation
# stays at the end of its sentence instead of opening the next chunk.
CHUNK_SEPARATORS: list[str] = [
    r"\n(?=#{1,6} )",  # before a Markdown heading, so a heading opens the chunk with its text
    r"\n[ \t]*\n\s*",  # paragraph break
    r"\n",  # line break
    # after 。！？；… unless more closing marks follow (keeps "……" and "。”" whole)
    rf"(?<=[{_ZH_ENDS}])(?![{_ZH_ENDS}{_ZH_CLOSERS}])|(?<=[{_ZH_ENDS}][{_ZH_CLOSERS}])",
    # English sentence end followed by whitespace ("3.2 m" and "Dr. X" are not one)
    rf"{_NOT_ABBREVIATION}(?<=[.!?;])\s+",
    r"(?<=[，、])",  # Chinese clause comma / enumeration comma
    r"(?<=,)\s+",  # English comma
    r"\s+",  # any whitespace
    "",  # last resort: single characters
]


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Split ``text`` into stripped, non-empty chunks of at most ``size`` characters."""
    if size <= 0:
        raise ValueError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap ({overlap}) must be in [0, chunk size {size})")
    if not text.strip():
        return []
    text = split_tables(text, size)
    splitter = RecursiveCharacterTextSplitter(
        separators=CHUNK_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=len,
        strip_whitespace=True,
    )
    chunks = [chunk.strip() for chunk in splitter.split_text(text)]
    chunks = _absorb_fragments([chunk for chunk in chunks if chunk], size)
    logger.debug("split %d characters into %d chunks (size=%d)", len(text), len(chunks), size)
    return chunks


def split_tables(text: str, size: int) -> str:
    """Cut each Markdown table longer than ``size`` into tables of whole rows, header repeated.

    The pieces are separate paragraphs, so the splitter keeps each whole in one chunk and a
    row never reaches a chunk without the header that says what its cells are. A short Markdown
    heading above the table (a sheet's or a slide's name) opens every later piece as well.
    """
    lines = text.split("\n")
    out: list[str] = []
    heading = ""
    i = 0
    while i < len(lines):
        if not _opens_table(lines, i):
            if lines[i].startswith("#"):
                heading = lines[i] if len(lines[i]) <= size // 5 else ""
            out.append(lines[i])
            i += 1
            continue
        end = i + 2
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        out.append(_table_pieces(lines[i : i + 2], lines[i + 2 : end], size, heading))
        i = end
    return "\n".join(out)


def _opens_table(lines: list[str], i: int) -> bool:
    return (
        lines[i].startswith("|")
        and i + 1 < len(lines)
        and TABLE_SEPARATOR.fullmatch(lines[i + 1]) is not None
    )


def _table_pieces(head: list[str], rows: list[str], size: int, heading: str) -> str:
    """Rows grouped under a copy of ``head`` so that each group fits ``size`` where it can;
    every group after the first also under ``heading`` (the first follows it already)."""
    head_len = sum(len(line) + 1 for line in head) + (len(heading) + 2 if heading else 0)
    groups: list[list[str]] = [[]]
    used = head_len
    for row in rows:
        if groups[-1] and used + len(row) + 1 > size:
            groups.append([])
            used = head_len
        groups[-1].append(row)
        used += len(row) + 1
    pieces = ["\n".join(head + group) for group in groups]
    return "\n\n".join(
        [pieces[0], *(f"{heading}\n{piece}" if heading else piece for piece in pieces[1:])]
    )


def _absorb_fragments(chunks: list[str], size: int) -> list[str]:
    """Glue a short chunk (typically a lone heading) onto the next one when both fit in ``size``.

    A heading alone is a useless retrieval hit that can outrank the passage it introduces.
    """
    min_len = max(1, size // 5)
    result: list[str] = []
    carry = ""
    for chunk in chunks:
        if carry and not chunk.startswith(carry):
            if len(carry) + 1 + len(chunk) <= size:
                chunk = f"{carry}\n{chunk}"
            else:
                result.append(carry)
        carry = ""
        if len(chunk) < min_len:
            # Held back: on its own it would be a near-empty retrieval hit.
            carry = chunk
        else:
            result.append(chunk)
    if carry:
        result.append(carry)
    return result
