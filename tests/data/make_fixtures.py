"""Regenerate the binary and encoding-specific fixtures in tests/data (deterministic output)."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

PDF_LINES = [
    "Zhiku sample PDF: Kestrel Range field notes",
    "The Kestrel Range weather mast recorded a peak gust of 41 metres per second.",
    "Snowcat trips to the summit take about ninety minutes in winter.",
]

DOCX_PARAGRAPHS = [
    "天工X7 快速入门指南",
    "首次使用前，请连续放水十分钟，以冲洗滤芯中的保护液。",
    "滤芯寿命剩余百分之十时，屏幕会亮起黄色提示灯。",
]

GBK_TEXT = (
    "青岚电器公司成立于一九九八年，总部位于一座虚构的沿海城市。\n"
    "公司主要生产净水器、空气净化器和电热水壶等小家电产品。\n"
    "二〇二三年，公司推出了天工系列智能净水器，受到了广大用户的欢迎。\n"
    "售后服务热线为四零零八二零七七八八，服务时间为每天上午八点至晚上八点。\n"
)

CRLF_MD = (
    "# 混合换行测试\r\n"
    "\r\n"
    "第一段使用 Windows 换行。\r\n"
    "第二行也是 CRLF。\r\n"
    "\n"
    "## Second section\n"
    "This line ends with a bare LF.\n"
    "This one ends with CRLF.\r\n"
)


def _pdf_content(lines: list[str]) -> bytes:
    """A page content stream that draws each line in Helvetica."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def build_pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF 1.4 file with a correct cross-reference table."""
    content = _pdf_content(lines) if lines else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)

ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)


def _document_xml(paragraphs: list[str]) -> str:
    body = "".join(f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>" for text in paragraphs)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}<w:sectPr/></w:body></w:document>"
    )


def build_docx(path: Path, paragraphs: list[str]) -> None:
    """Write a minimal valid .docx (OOXML zip) with one run per paragraph."""
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "word/document.xml": _document_xml(paragraphs),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            # A fixed timestamp keeps the committed file byte-for-byte reproducible.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))


def main() -> None:
    """Write every generated fixture next to this script."""
    full_pdf = build_pdf(PDF_LINES)
    (HERE / "sample.pdf").write_bytes(full_pdf)
    (HERE / "blank.pdf").write_bytes(build_pdf([]))
    # A real header followed by a cut-off body: what an interrupted upload looks like.
    (HERE / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Cat\x00\x17\x9c garbage")
    build_docx(HERE / "sample.docx", DOCX_PARAGRAPHS)
    build_docx(HERE / "empty.docx", [])
    (HERE / "corrupt.docx").write_bytes(b"PK\x03\x04" + b"\x00\x14 not really a zip archive")
    (HERE / "binary.txt").write_bytes(b"\x00\x01\x02" + random.Random(7).randbytes(509))
    (HERE / "empty.txt").write_bytes(b"")
    (HERE / "gbk.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (HERE / "crlf.md").write_bytes(CRLF_MD.encode("utf-8"))


if __name__ == "__main__":
    main()
