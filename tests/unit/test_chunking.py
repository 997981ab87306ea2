"""Chunking of Chinese, English and Markdown text."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from ingestion.chunking import chunk_text

DATA = Path(__file__).resolve().parents[1] / "data"
ZH_SENTENCE_ENDS = ("。", "！", "？", "；", "…", "”")


def _chinese_text(sentences: int) -> str:
    parts = []
    for i in range(sentences):
        if i % 4 == 0:
            parts.append(f"第{i}条提示：滤芯需要定期更换吗？")
        elif i % 4 == 1:
            parts.append(f"第{i}条说明，净水器的出水量和水压有关，也和滤芯的状态有关。")
        elif i % 4 == 2:
            parts.append(f"请注意第{i}条！")
        else:
            parts.append(f"第{i}条记录；")
    return "".join(parts)


def test_chinese_text_splits_at_sentence_ends() -> None:
    text = _chinese_text(80)
    chunks = chunk_text(text, size=120, overlap=40)
    assert len(chunks) > 5
    for chunk in chunks[:-1]:
        assert chunk.endswith(ZH_SENTENCE_ENDS), chunk
    for chunk in chunks:
        # Punctuation stays with its sentence, so no chunk opens with one.
        assert not chunk.startswith(("。", "！", "？", "；", "，"))


@pytest.mark.parametrize(("size", "overlap"), [(60, 0), (120, 40), (300, 80), (500, 100)])
def test_no_chunk_exceeds_size(size: int, overlap: int) -> None:
    texts = [_chinese_text(80), (DATA / "zh_manual.md").read_text(encoding="utf-8")]
    texts.append((DATA / "en_report.txt").read_text(encoding="utf-8"))
    for text in texts:
        chunks = chunk_text(text, size=size, overlap=overlap)
        assert chunks
        assert max(len(chunk) for chunk in chunks) <= size


def test_consecutive_chunks_overlap() -> None:
    overlap = 40
    chunks = chunk_text(_chinese_text(80), size=120, overlap=overlap)
    for previous, current in itertools.pairwise(chunks):
        # Every sentence is shorter than the overlap, so each chunk repeats the previous one's end.
        first_sentence = re.split(r"(?<=[。！？；])", current)[0]
        assert first_sentence in previous[-overlap:], (previous, current)


def test_zero_overlap_loses_and_repeats_nothing() -> None:
    text = _chinese_text(40)
    chunks = chunk_text(text, size=100, overlap=0)
    assert "".join(chunks) == text


def test_chunks_cover_the_whole_text() -> None:
    text = (DATA / "zh_manual.md").read_text(encoding="utf-8")
    chunks = chunk_text(text, size=200, overlap=40)
    joined = "\n".join(chunks)
    for fact in ("PP 棉滤芯每 180 天更换一次。", "400-820-7788", "整机保修期为三年"):
        assert any(fact in chunk for chunk in chunks), fact
    assert "八、保修与售后" in joined


def test_markdown_headings_open_chunks_with_their_text() -> None:
    text = (DATA / "zh_manual.md").read_text(encoding="utf-8")
    chunks = chunk_text(text, size=300, overlap=50)
    section_chunks = [chunk for chunk in chunks if "## 五、滤芯更换" in chunk]
    assert len(section_chunks) == 1
    assert section_chunks[0].startswith("## 五、滤芯更换")
    assert "PP 棉滤芯每 180 天更换一次。" in section_chunks[0]
    # A heading never dangles alone at the end of a chunk.
    for chunk in chunks:
        assert not chunk.splitlines()[-1].startswith("#"), chunk


def test_english_text_splits_at_sentences() -> None:
    text = (DATA / "en_report.txt").read_text(encoding="utf-8")
    chunks = chunk_text(text, size=250, overlap=50)
    assert len(chunks) > 8
    assert all(len(chunk) <= 250 for chunk in chunks)
    # The abbreviation is not a sentence end, and decimals are not split.
    assert any("Dr. Helena Marsh" in chunk for chunk in chunks)
    assert any("3.2 metres in diameter" in chunk for chunk in chunks)
    assert sum(chunk.endswith(".") for chunk in chunks) >= len(chunks) - 3


def test_long_unbroken_text_falls_back_to_characters() -> None:
    chunks = chunk_text("知" * 250, size=100, overlap=10)
    assert [len(chunk) for chunk in chunks] == [100, 100, 70]


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  天工X7 很好用。 \n", size=100, overlap=10) == ["天工X7 很好用。"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text, size=100, overlap=10) == []


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, 150), (100, -1)])
def test_impossible_sizes_are_rejected(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match=str(size)):
        chunk_text("文本。", size=size, overlap=overlap)
