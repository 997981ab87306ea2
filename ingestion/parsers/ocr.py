"""Text from images with RapidOCR (PP-OCRv4 models shipped in its wheel, so it runs offline).

Images are bounded before any pixel is decoded: a small file can declare a gigapixel canvas.
The engine loads once per parser child, on the first page that needs it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

# Larger pages are scaled down first: the detector works at about this size anyway.
_MAX_SIDE = 2400


@lru_cache(maxsize=1)
def _engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def ocr_image(image: Image) -> str:
    """The text of one page image, line by line in reading order."""
    import numpy as np

    image = image.convert("RGB")
    if max(image.size) > _MAX_SIDE:
        image.thumbnail((_MAX_SIDE, _MAX_SIDE))
    result, _elapsed = _engine()(np.asarray(image), use_cls=False)
    return "\n".join(_lines(result or []))


def load_image(path: Path, max_pixels: float) -> str:
    """OCR of an uploaded png/jpg, refused before decoding when it declares too many pixels."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # our own bound below, with a message that names the setting
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DocumentParseError(
                    f"'{path.name}' is {width}×{height} pixels, over the limit of "
                    f"{max_pixels:.0f} (ZHIKU_PARSING__MAX_IMAGE_PIXELS); refused"
                )
            image.load()
            return ocr_image(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DocumentParseError(f"could not read image: {exc or type(exc).__name__}") from exc


def _lines(result: list[Any]) -> list[str]:
    """Boxes grouped into lines (a box whose middle lies within a line's height joins it)."""
    boxes = sorted(
        (min(p[1] for p in box), max(p[1] for p in box), min(p[0] for p in box), str(text))
        for box, text, _score in result
    )
    lines: list[tuple[float, float, list[tuple[float, str]]]] = []
    for top, bottom, left, text in boxes:
        middle = (top + bottom) / 2
        if lines and lines[-1][0] <= middle <= lines[-1][1]:
            lines[-1][2].append((left, text))
        else:
            lines.append((top, bottom, [(left, text)]))
    return [_join(sorted(parts)) for _top, _bottom, parts in lines]


def _join(parts: list[tuple[float, str]]) -> str:
    """Pieces of one line: a space only between two Latin words, never inside Chinese."""
    out = ""
    for _left, text in parts:
        if out and out[-1].isascii() and out[-1].isalnum() and text[:1].isascii():
            out += " "
        out += text
    return out
