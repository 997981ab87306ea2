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
