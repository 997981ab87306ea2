"""Type detection and text extraction on the real fixture files in tests/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.loaders import decode_text, extract_text, load_text, normalize_text
from services.common.errors import (
    DocumentParseError,
    EmptyInputError,
    UnsupportedFileTypeError,
)
from services.common.filetypes import CONTENT_TYPES, SUPPORTED_TYPES, detect_type
from services.common.settings import ParsingSettings

DATA = Path(__file__).resolve().parents[1] / "data"
HEAD_BYTES = 8192


def _head(name: str) -> bytes:
    with (DATA / name).open("rb") as handle:
        return handle.read(HEAD_BYTES)


def _load(name: str) -> str:
    return load_text(DATA / name, detect_type(name, _head(name)))


def test_every_supported_type_has_a_content_type() -> None:
    assert set(CONTENT_TYPES) == set(SUPPORTED_TYPES)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("zh_manual.md", "md"),
        ("en_report.txt", "txt"),
        ("sample.html", "html"),
        ("sample.pdf", "pdf"),
        ("sample.docx", "docx"),
        ("gbk.txt", "txt"),
        ("crlf.md", "md"),
        ("corrupt.pdf", "pdf"),
    ],
)
def test_detect_type_of_fixtures(name: str, kind: str) -> None:
    assert detect_type(name, _head(name)) == kind


def test_detect_type_trusts_pdf_content_over_a_wrong_name() -> None:
    assert detect_type("scan.txt", _head("sample.pdf")) == "pdf"
    assert detect_type("download", _head("sample.pdf")) == "pdf"


def test_detect_type_accepts_a_docx_whose_head_is_too_short_to_see_word_parts() -> None:
    assert detect_type("Report.DOCX", _head("sample.docx")[:40]) == "docx"


def test_detect_type_accepts_extension_aliases_case_insensitively() -> None:
    head = b"<html><body><p>hello</p></body></html>"
    assert detect_type("page.HTM", head) == "html"
    assert detect_type("notes.markdown", b"# title\n") == "md"


def test_detect_type_refuses_binary_named_txt() -> None:
    with pytest.raises(UnsupportedFileTypeError, match="binary"):
        detect_type("binary.txt", _head("binary.txt"))


def test_detect_type_refuses_an_image_named_md() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(32)
    with pytest.raises(UnsupportedFileTypeError):
        detect_type("photo.md", png)


def test_detect_type_refuses_a_text_file_named_pdf() -> None:
    with pytest.raises(UnsupportedFileTypeError, match=r"\.pdf"):
        detect_type("fake.pdf", b"just some text, not a PDF")


def test_detect_type_unknown_extension_names_supported_types() -> None:
    with pytest.raises(UnsupportedFileTypeError) as info:
        detect_type("table.xyz", b"a,b,c\n1,2,3\n")
    for kind in SUPPORTED_TYPES:
        assert kind in info.value.message
    assert info.value.error_type == "unsupported_file_type"


def test_detect_type_empty_content() -> None:
    with pytest.raises(EmptyInputError):
        detect_type("empty.txt", _head("empty.txt"))


def test_detect_type_keeps_text_whose_head_cuts_a_character_in_half() -> None:
    utf8 = "净水器".encode()  # 9 bytes; cutting at 8 splits the last character
    assert detect_type("a.txt", utf8[:8]) == "txt"
    gbk = (DATA / "gbk.txt").read_bytes()
    assert detect_type("b.txt", gbk[:61]) == "txt"


@pytest.mark.parametrize(
    ("name", "passages"),
    [
        ("zh_manual.md", ["# 天工X7 智能净水器", "PP 棉滤芯每 180 天更换一次。"]),
        ("en_report.txt", ["primary mirror is 3.2 metres in diameter", "Dr. Helena Marsh"]),
        ("sample.pdf", ["peak gust of 41 metres per second", "Kestrel Range field notes"]),
        (
            "sample.docx",
            ["首次使用前，请连续放水十分钟，以冲洗滤芯中的保护液。", "天工X7 快速入门指南"],
        ),
        ("gbk.txt", ["青岚电器公司成立于一九九八年", "售后服务热线"]),
    ],
)
def test_load_fixture_keeps_its_passages(name: str, passages: list[str]) -> None:
    text = _load(name)
    for passage in passages:
        assert passage in text
    if name.endswith(".md"):
        assert text.startswith(passages[0])


def test_load_html_keeps_article_and_drops_noise() -> None:
    text = _load("sample.html")
    assert "其中萎凋需要持续十八个小时，这是它区别于其他白茶的关键。" in text
    # Inline markup must not break the sentence apart.
    assert "海拔约 1200 米，常年云雾缭绕。" in text
    assert "## 制茶工艺" in text
    for noise in ("SCRIPT_NOISE_SHOULD_NOT_APPEAR", "导航噪声", "页脚噪声", "hidden-style-marker"):
        assert noise not in text


def test_load_mixed_line_endings_normalised() -> None:
    text = _load("crlf.md")
    assert "\r" not in text
    assert "第一段使用 Windows 换行。\n第二行也是 CRLF。" in text
    assert "This line ends with a bare LF.\nThis one ends with CRLF." in text


def test_load_corrupt_pdf() -> None:
    with pytest.raises(DocumentParseError, match="could not read PDF"):
        load_text(DATA / "corrupt.pdf", "pdf")


def test_load_corrupt_docx() -> None:
    with pytest.raises(DocumentParseError, match="could not read DOCX"):
        load_text(DATA / "corrupt.docx", "docx")


@pytest.mark.parametrize(("name", "kind"), [("blank.pdf", "pdf"), ("empty.docx", "docx")])
def test_load_document_without_text(name: str, kind: str) -> None:
    with pytest.raises(DocumentParseError, match="no text could be extracted"):
        load_text(DATA / name, kind)


def test_load_empty_file() -> None:
    with pytest.raises(EmptyInputError):
        load_text(DATA / "empty.txt", "txt")


def test_load_whitespace_only_text(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text(" \n\r\n\t\n", encoding="utf-8")
    with pytest.raises(DocumentParseError, match="no text could be extracted"):
        load_text(path, "md")


def test_load_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentParseError):
        load_text(tmp_path / "gone.pdf", "pdf")
    with pytest.raises(DocumentParseError):
        load_text(tmp_path / "gone.txt", "txt")


def test_load_unknown_kind() -> None:
    with pytest.raises(UnsupportedFileTypeError):
        load_text(DATA / "en_report.txt", "rtf")


def test_decode_text_handles_boms_and_gbk() -> None:
    assert decode_text("\ufeff知库".encode()) == "知库"
    assert decode_text("知库 zhiku".encode("utf-16")) == "知库 zhiku"
    assert decode_text("知库".encode("gbk")) == "知库"


def test_normalize_text() -> None:
    raw = "a  \r\nb\rc\n\n\n\n\nd\x0ce \u3000\n"
    assert normalize_text(raw) == "a\nb\nc\n\nd\n\ne"
    assert normalize_text("x \xa0\t\nkept  inside  \n") == "x\nkept  inside"


@pytest.mark.timeout(30)
def test_normalize_text_is_linear_on_a_run_of_spaces_without_newline() -> None:
    # The trailing-space regex once scanned the run again from each position: hours for 1 MB.
    assert normalize_text("a" + " " * 2**20 + "b" + " " * 2**20) == "a" + " " * 2**20 + "b"


@pytest.mark.parametrize("name", ["en_report.txt", "sample.html", "sample.pdf", "sample.docx"])
def test_every_format_is_parsed_in_the_time_bounded_child(name: str) -> None:
    # No parser answers in a millisecond, not even the child's start: the limit is what answers.
    kind = detect_type(name, _head(name))
    with pytest.raises(DocumentParseError, match=rf"parsing the {kind} file took longer than"):
        load_text(DATA / name, kind, ParsingSettings(timeout_s=0.001))


def test_the_child_returns_what_the_parser_extracts() -> None:
    for name in ("en_report.txt", "sample.html", "sample.docx"):
        kind = detect_type(name, _head(name))
        assert _load(name) == extract_text(DATA / name, kind, ParsingSettings().model_dump())
