"""Pathological uploads parse and chunk in bounded time, or are refused with a reason."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from ingestion.chunking import chunk_text
from ingestion.loaders import extract_text, load_text
from services.common.errors import DocumentParseError
from services.common.settings import ParsingSettings
from tests.data.pathological import PATHOLOGICAL, write_pathological

LIMITS = ParsingSettings(timeout_s=60)
GRACE_S = 30  # starting the parser process and chunking, on a busy machine


@pytest.mark.timeout(LIMITS.timeout_s + 2 * GRACE_S)
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_upload_is_parsed_and_chunked_within_the_limit(
    tmp_path: Path, name: str
) -> None:
    path, kind = write_pathological(tmp_path, name)
    started = time.monotonic()
    try:
        chunks = chunk_text(load_text(path, kind, LIMITS), 500, 80)
    except DocumentParseError as exc:  # refused is fine, as long as it says why
        assert "took longer than" in exc.message or "MAX_MEMORY_MB" in exc.message
    else:
        assert chunks and all(len(chunk) <= 500 for chunk in chunks)
    assert time.monotonic() - started < LIMITS.timeout_s + GRACE_S


@pytest.mark.timeout(60)
def test_spaces_without_a_newline_are_kept_and_split(tmp_path: Path) -> None:
    path, kind = write_pathological(tmp_path, "spaces.txt")
    text = extract_text(path, kind, LIMITS.model_dump())
    assert re.fullmatch(r"start {1048576}end", text)
    assert chunk_text(text, 500, 80) == ["start\nend"]  # the run split away, fragments glued


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "word"), [("nested.html", "deep"), ("siblings.html", "wide")])
def test_deep_and_wide_html_keep_their_text(tmp_path: Path, name: str, word: str) -> None:
    path, kind = write_pathological(tmp_path, name)
    text = extract_text(path, kind, LIMITS.model_dump())
    assert set(text.split()) == {word}
    if name == "siblings.html":
        assert text.count(word) == 100_000 and text.count("\n") >= 99_999


@pytest.mark.timeout(60)
def test_huge_docx_paragraph_is_one_paragraph(tmp_path: Path) -> None:
    path, kind = write_pathological(tmp_path, "huge_paragraph.docx")
    text = extract_text(path, kind, LIMITS.model_dump())
    assert "\n" not in text and len(text) > 4_000_000
