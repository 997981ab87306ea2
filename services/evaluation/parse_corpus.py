"""A generated parse-quality corpus: documents rendered from known text and known table cells.

Each ``ParseCase`` is written into a folder by ``write_corpus`` and carries what a perfect
parser returns: the running text and the table rows (header first). Chinese is rendered with
Noto Sans CJK (Debian's fonts-noto-cjk); scanned pages are images at 200 dpi, no text layer.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFont import FreeTypeFont

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FONT_SC = 2  # the Simplified Chinese face in the collection
SCAN_DPI = 200

ZH_TEXT = [
    "青岚电器公司成立于一九九八年，总部位于一座虚构的沿海城市。",
    "公司主要生产净水器、空气净化器和电热水壶等小家电产品。",
    "二〇二三年，公司推出了天工系列智能净水器，受到了广大用户的欢迎。",
    "首次使用前，请连续放水十分钟，以冲洗滤芯中的保护液。",
    "滤芯寿命剩余百分之十时，屏幕会亮起黄色提示灯。",
    "售后服务热线为四零零八二零七七八八，服务时间为每天上午八点至晚上八点。",
]
EN_TEXT = [
    "The Kestrel Range weather mast recorded a peak gust of 41 metres per second.",
    "Snowcat trips to the summit take about ninety minutes in winter.",
    "The primary mirror of the observatory is 3.2 metres in diameter.",
    "Visitors must register at the lower station before eight in the morning.",
]
# More sentences for the two-column pages, so each column runs down most of the page.
ZH_MORE = [
    "天工系列净水器采用五级过滤，出水量为每分钟两升。",
    "更换滤芯时，请先关闭进水阀，再逆时针旋转滤芯取出。",
    "产品保修期内，因质量问题产生的维修不收取任何费用。",
    "如设备连续七天未使用，再次使用前请先放水三分钟。",
]
EN_MORE = [
    "The lower station cafe is open from seven until five every day of the year.",
    "Guided night tours of the observatory run on clear evenings from October to March.",
    "Each tour group is limited to twelve people and lasts about two hours.",
    "Warm boots and gloves are required because the dome is not heated.",
]
ZH_TITLE = "青岚电器用户手册"
EN_TITLE = "Kestrel Range Visitor Notes"
# Long enough to wrap on an A4 page: the parser must join the lines back without spaces.
LONG_PARAGRAPHS = ["".join(ZH_TEXT[:3]), "".join(ZH_TEXT[3:]), " ".join(EN_TEXT)]
TABLE: list[list[str]] = [
    ["产品", "型号", "单价（元）", "保修期"],
    ["天工净水器", "X7", "2999", "两年"],
    ["PP 棉滤芯", "F-180", "89", "三个月"],
    ["活性炭滤芯", "C-360", "159", "六个月"],
    ["反渗透膜", "RO-500", "699", "一年"],
    ["Air purifier", "AP-2", "1299", "two years"],
]


@dataclass(frozen=True)
class ParseCase:
    """One generated document and what parsing it should give."""

    name: str
    kind: str
    text: list[str] = field(default_factory=list)  # paragraphs, in order
    table: list[list[str]] = field(default_factory=list)  # header row first
    scanned: bool = False


def _font(size: int) -> FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(str(CJK_FONT), size, index=CJK_FONT_SC)


def _wrap(paragraph: str) -> list[str]:
    width = 70 if paragraph.isascii() else 34  # characters per line at 12 pt on A4
    return textwrap.wrap(paragraph, width)


def scan_image(paragraphs: list[str]) -> Image:
    """An A4 page image at SCAN_DPI with the paragraphs drawn in 12 pt black on white."""
    from PIL import Image, ImageDraw

    px = SCAN_DPI / 72
    image = Image.new("L", (int(595 * px), int(842 * px)), 255)
    draw = ImageDraw.Draw(image)
    font = _font(int(12 * px))
    y = 72 * px
    for paragraph in paragraphs:
        for line in _wrap(paragraph):
            draw.text((72 * px, y), line, font=font, fill=0)
            y += 20 * px
        y += 10 * px
    return image


def _write_scanned_pdf(path: Path, case: ParseCase) -> None:
    scan_image(case.text).save(path, "PDF", resolution=SCAN_DPI)


def _write_png(path: Path, case: ParseCase) -> None:
    scan_image(case.text).save(path, "PNG")


def _write_text_pdf(path: Path, case: ParseCase) -> None:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(format="A4")
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=CJK_FONT_SC)
    pdf.set_font("noto", size=12)
    pdf.add_page()
    half = len(case.text) // 2 if case.table else len(case.text)
    for paragraph in case.text[:half]:
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
    if case.table:
        pdf.ln(4)
        with pdf.table(headings_style=FontFace()) as table:
            for row in case.table:
                cells = table.row()
                for value in row:
                    cells.cell(value)
        pdf.ln(4)
    for paragraph in case.text[half:]:
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


HEADER_TEXT = "青岚电器 内部资料"


def _write_paged_pdf(path: Path, case: ParseCase) -> None:
    """One paragraph per page, under a running header and over a "第 n 页" footer."""
    from fpdf import FPDF

    class Paged(FPDF):
        def header(self) -> None:
            self.cell(0, 8, HEADER_TEXT, new_x="LMARGIN", new_y="NEXT", align="C")
            self.ln(6)

        def footer(self) -> None:
            self.set_y(-15)
            self.cell(0, 8, f"第 {self.page_no()} 页", align="C")

    pdf = Paged(format="A4")
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=CJK_FONT_SC)
    pdf.set_font("noto", size=12)
    for paragraph in case.text:
        pdf.add_page()
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


COLUMN_GAP = 24  # points between the two columns


def _write_two_column_pdf(path: Path, case: ParseCase) -> None:
    """A title across the page, then the rest in two columns, left before right.

    The content stream writes the page line by line across both columns (as many typesetting
    tools do), so reading the stream in order reads across the columns.
    """
    from fpdf import FPDF

    title, body = case.text[0], case.text[1:]
    half = (len(body) + 1) // 2
    pdf = FPDF(format="A4", unit="pt")
    pdf.add_font("noto", fname=str(CJK_FONT), collection_font_number=CJK_FONT_SC)
    pdf.add_page()
    pdf.set_font("noto", size=16)
    pdf.text((595 - pdf.get_string_width(title)) / 2, 80, title)
    pdf.set_font("noto", size=11)
    width = (595 - 2 * 60 - COLUMN_GAP) / 2
    left, right = _column_lines(pdf, body[:half], width), _column_lines(pdf, body[half:], width)
    for row in range(max(len(left), len(right))):
        y = 120 + row * 16
        for x, lines in ((60, left), (60 + width + COLUMN_GAP, right)):
            if row < len(lines) and lines[row]:
                pdf.text(x, y, lines[row])
    pdf.text((595 - pdf.get_string_width("1")) / 2, 800, "1")
    pdf.output(str(path))


def _column_lines(pdf: Any, paragraphs: list[str], width: float) -> list[str]:
    """The paragraphs broken into lines no wider than ``width``, a blank line after each."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += pdf.multi_cell(width, 16, paragraph, dry_run=True, output="LINES")
        lines.append("")
    return lines


def _write_docx(path: Path, case: ParseCase) -> None:
    import docx

    document = docx.Document()
    half = len(case.text) // 2
    for paragraph in case.text[:half]:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=len(case.table), cols=len(case.table[0]))
    for r, row in enumerate(case.table):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    for paragraph in case.text[half:]:
        document.add_paragraph(paragraph)
    document.save(str(path))


def _write_xlsx(path: Path, case: ParseCase) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("价格表")
    for row in case.table:
        sheet.append(row)
    workbook.save(path)


def _write_pptx(path: Path, case: ParseCase) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for paragraph in case.text:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.placeholders[1].text_frame.text = paragraph
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    rows, cols = len(case.table), len(case.table[0])
    shape = slide.shapes.add_table(rows, cols, Inches(0.5), Inches(1), Inches(9), Inches(4))
    for r, row in enumerate(case.table):
        for c, value in enumerate(row):
            shape.table.cell(r, c).text = value
    deck.save(str(path))


_WRITERS: dict[str, Callable[[Path, ParseCase], None]] = {
    "text-pdf": _write_text_pdf,
    "paged-pdf": _write_paged_pdf,
    "scanned-pdf": _write_scanned_pdf,
    "png": _write_png,
    "two-column-pdf": _write_two_column_pdf,
    "docx": _write_docx,
    "xlsx": _write_xlsx,
    "pptx": _write_pptx,
}

CASES: list[tuple[ParseCase, str]] = [
    (ParseCase("zh_text.pdf", "pdf", ZH_TEXT), "text-pdf"),
    (ParseCase("en_text.pdf", "pdf", EN_TEXT), "text-pdf"),
    (ParseCase("table.pdf", "pdf", ZH_TEXT[:2], TABLE), "text-pdf"),
    (ParseCase("headers.pdf", "pdf", LONG_PARAGRAPHS), "paged-pdf"),
    (ParseCase("zh_columns.pdf", "pdf", [ZH_TITLE, *ZH_TEXT, *ZH_MORE]), "two-column-pdf"),
    (ParseCase("en_columns.pdf", "pdf", [EN_TITLE, *EN_TEXT, *EN_MORE]), "two-column-pdf"),
    (ParseCase("table.docx", "docx", ZH_TEXT[:2], TABLE), "docx"),
    (ParseCase("table.xlsx", "xlsx", [], TABLE), "xlsx"),
    (ParseCase("slides.pptx", "pptx", ZH_TEXT[:3] + EN_TEXT[:1], TABLE), "pptx"),
    (ParseCase("zh_scan.pdf", "pdf", ZH_TEXT, scanned=True), "scanned-pdf"),
    (ParseCase("zh_scan.png", "png", ZH_TEXT[:3], scanned=True), "png"),
]


def write_corpus(folder: Path, names: set[str] | None = None) -> list[tuple[ParseCase, Path]]:
    """Write the corpus (or the named cases) into ``folder``; return each case with its path."""
    if not CJK_FONT.exists():
        raise FileNotFoundError(f"{CJK_FONT} is missing: install Debian's fonts-noto-cjk")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for case, writer in CASES:
        if names is None or case.name in names:
            path = folder / case.name
            _WRITERS[writer](path, case)
            written.append((case, path))
    return written
