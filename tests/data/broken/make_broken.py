"""Regenerate the broken-upload fixtures in tests/data/broken (small, deterministic files).

The 10 MB single-line file is not committed: tests build it with :func:`single_line`.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.data.make_fixtures import GBK_TEXT, PDF_LINES, build_docx, build_pdf

HERE = Path(__file__).resolve().parent

# Characters outside GBK (a CJK Extension B ideograph, the euro sign) need GB18030's 4-byte forms.
GB18030_TEXT = (
    "𠀀字库扩展测试：石家庄的“𠀀”字只在 GB18030 中有编码。\n"
    "欧元符号 € 与人民币符号 ￥ 同时出现在价目表里。\n"
    "玄武岩测站位于海拔三千二百米处，每年观测两百一十四个晴夜。\n"
)

MIXED_ENDINGS = (
    "Mixed line endings survey\r\n"
    "The north gauge reads in Windows style.\r\n"
    "The south gauge reads in Unix style.\n"
    "The old east gauge still uses classic Mac endings.\r"
    "所有测量站都在凌晨四点同步时间。\r\n"
)


def single_line(size: int) -> bytes:
    """One line of ASCII words, ``size`` bytes long, with no newline anywhere."""
    words = ("granite", "basalt", "quartz", "feldspar", "mica", "shale")
    rng = random.Random(11)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode() + b" "
    return bytes(out[:size])


def main() -> None:
    """Write every broken fixture next to this script."""
    pdf = build_pdf(PDF_LINES)
    (HERE / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])
    (HERE / "binary.txt").write_bytes(b"\x00\x01\x02" + random.Random(5).randbytes(253))
    build_docx(HERE / "empty.docx", [])
    (HERE / "gbk.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (HERE / "gb18030.txt").write_bytes(GB18030_TEXT.encode("gb18030"))
    (HERE / "mixed_endings.txt").write_bytes(MIXED_ENDINGS.encode("utf-8"))


if __name__ == "__main__":
    main()
