"""A PDF page as a PNG for a citation's preview, the quoted passage outlined where found.

One page is rendered, its longest side bounded, so a preview costs about the same for any PDF.
It is rendered in a child process bounded in time and memory (services.common.bounded_child,
``python -m services.gateway.documents.page_child``), as the file was parsed: a crafted PDF that
makes PDFium loop or allocate costs that child, never the gateway.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.bounded_child import ChildCrashedError, ChildTimeoutError, run_bounded
from services.common.errors import DocumentParseError, NotFoundError, UnsupportedFileTypeError

if TYPE_CHECKING:
    from PIL.Image import Image
    from pypdfium2 import PdfPage

    from services.common.settings import ParsingSettings

logger = logging.getLogger(__name__)

MAX_SIDE_PX = 1600
# Searched piece of the quote: PDF text search matches within lines, a long quote spans several.
_NEEDLE_CHARS = 24


CHILD = "services.gateway.documents.page_child"


def render_page_bounded(
    path: Path, page_number: int, highlight: str | None, limits: ParsingSettings
) -> bytes:
    """``render_page_png`` in a child within the time and memory limits; raises its error."""
    quote = (highlight or "").replace("\x00", "")  # an argument cannot hold a NUL
    args = [str(path), str(page_number), quote, str(limits.max_memory_mb)]
    try:
        result = run_bounded(CHILD, args, limits.page_render_timeout_s)
    except ChildTimeoutError as exc:
        raise DocumentParseError(
            f"rendering page {page_number} took longer than {limits.page_render_timeout_s:g} s "
            "(ZHIKU_PARSING__PAGE_RENDER_TIMEOUT_S); refused"
        ) from exc
    except ChildCrashedError as exc:
        raise DocumentParseError(
            f"rendering page {page_number} needed more than {limits.max_memory_mb} MB "
            "(ZHIKU_PARSING__MAX_MEMORY_MB) or crashed the renderer; refused"
        ) from exc
    return base64.b64decode(result["png"])


def render_page_png(path: Path, page_number: int, highlight: str | None = None) -> bytes:
    """Page ``page_number`` (from 1) of the PDF at ``path`` as PNG bytes (in this process)."""
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(path)
    except (pypdfium2.PdfiumError, OSError) as exc:
        raise DocumentParseError(f"could not open the PDF to render a page: {exc}") from exc
    try:
        if not 1 <= page_number <= len(document):
            raise NotFoundError(f"page {page_number} is not in this PDF of {len(document)} pages")
        page = document[page_number - 1]
        width, height = page.get_size()
        scale = min(2.0, MAX_SIDE_PX / max(width, height, 1.0))
        image = page.render(scale=scale).to_pil().convert("RGB")
        if highlight:
            _outline(image, page, highlight, scale, height)
        page.close()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _outline(image: Image, page: PdfPage, quote: str, scale: float, height: float) -> None:
    """Draw a box around each line of the first place the quote's opening words are found."""
    from PIL import ImageDraw

    needle = " ".join(quote.split())[:_NEEDLE_CHARS].strip()
    if not needle:
        return
    textpage = page.get_textpage()
    try:
        found = textpage.search(needle, match_case=False).get_next()
        if found is None:
            return
        index, count = found
        draw = ImageDraw.Draw(image)
        for i in range(textpage.count_rects(index, count)):
            left, bottom, right, top = textpage.get_rect(i)
            box = (left * scale, (height - top) * scale, right * scale, (height - bottom) * scale)
            draw.rectangle(box, outline=(230, 120, 0), width=3)
    finally:
        textpage.close()


def ensure_pdf(content_type: str, filename: str) -> None:
    if content_type != "application/pdf":
        raise UnsupportedFileTypeError(f"'{filename}' is not a PDF: it has no pages to show")
