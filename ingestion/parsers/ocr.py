"""Text from images with RapidOCR (PP-OCRv4 models shipped in its wheel, so it runs offline).

Images are bounded before any pixel is decoded: a small file can declare a gigapixel canvas.
The engine loads once per parser process and options, on the first page that needs it.
Detection may run on a smaller copy of the page (``det_scale``): it only needs to find the
lines, while recognition reads them cropped from the full-size page, where strokes are sharp.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from PIL.Image import Image
    from pypdfium2 import PdfPage

logger = logging.getLogger(__name__)

_DET_MIN_SIDE = 320  # pixels: a smaller image is enlarged for the detector


@dataclass(frozen=True)
class OcrOptions:
    """How pages are read; the defaults are ParsingSettings' (chosen by bench.ocr_levers)."""

    use_cls: bool = False  # the angle classifier: only for lines upside down
    threads: int = 2  # onnxruntime intra-op threads per session; 0: onnxruntime decides
    rec_batch: int = 1  # text lines recognised per model call
    max_side: int = 2000  # a larger page is scaled down to this first (pixels)
    det_scale: float = 0.5  # detection on the page scaled by this; recognition at full size

    @classmethod
    def from_limits(cls, limits: Mapping[str, Any]) -> OcrOptions:
        """The options from the parsing limits as the parser child receives them."""
        return cls(
            use_cls=bool(limits.get("ocr_angle_classifier", cls.use_cls)),
            threads=int(limits.get("ocr_threads", cls.threads)),
            rec_batch=int(limits.get("ocr_rec_batch", cls.rec_batch)),
            max_side=int(limits.get("ocr_max_side", cls.max_side)),
            det_scale=float(limits.get("ocr_det_scale", cls.det_scale)),
        )


@lru_cache(maxsize=2)
def engine(options: OcrOptions) -> Any:
    """The RapidOCR engine for ``options``, loaded once (model loading takes a fraction of a s)."""
    from rapidocr_onnxruntime import RapidOCR

    # RapidOCR enlarges a page whose short side is under det_limit_side_len (736) before
    # detection; the page it gets is already the size chosen (det_scale): only tiny images grow.
    ocr = RapidOCR(
        rec_batch_num=options.rec_batch,
        max_side_len=options.max_side,
        det_limit_type="min",
        det_limit_side_len=_DET_MIN_SIDE,
    )
    _set_threads(ocr, options.threads)
    return ocr


def _set_threads(ocr: Any, threads: int) -> None:
    """Sessions with ``threads`` intra-op threads that sleep when idle instead of spinning.

    RapidOCR does not expose spinning; on cores shared with other work a spinning thread takes
    time from them and from its own sibling thread. The models are those RapidOCR loaded.
    """
    import onnxruntime as ort
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    config = update_model_path(read_yaml(str(DEFAULT_CFG_PATH)))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for holder, section in (
        (ocr.text_det.infer, "Det"),
        (ocr.text_cls.infer, "Cls"),
        (ocr.text_rec.session, "Rec"),
    ):
        holder.session = ort.InferenceSession(
            config[section]["model_path"], options, providers=["CPUExecutionProvider"]
        )


def ocr_image(image: Image, options: OcrOptions | None = None) -> str:
    """The text of one page image, line by line in reading order."""
    return ocr_image_timed(image, options or OcrOptions())[0]


def ocr_image_timed(image: Image, options: OcrOptions) -> tuple[str, dict[str, float]]:
    """The text of one page image, and the seconds detection, classification, recognition took."""
    import numpy as np

    image = image.convert("RGB")
    if max(image.size) > options.max_side:
        image.thumbnail((options.max_side, options.max_side))
    page = np.asarray(image)
    ocr = engine(options)
    boxes, detection = _detect(ocr, page, options.det_scale)
    stages = {"detection": detection, "classification": 0.0, "recognition": 0.0}
    if not boxes:
        return "", stages
    crops = ocr.get_crop_img_list(page, boxes)
    if options.use_cls:
        crops, _angles, stages["classification"] = ocr.text_cls(crops)
    texts, stages["recognition"] = ocr.text_rec(crops)
    found = [
        (box, text, score)
        for box, (text, score, *_rest) in zip(boxes, texts, strict=True)
        if float(score) >= ocr.text_score
    ]
    return "\n".join(_lines(found)), stages


def ocr_pdf_page(page: PdfPage, limits: Mapping[str, Any]) -> str:
    """Render one scanned PDF page at ZHIKU_PARSING__OCR_DPI (less for a huge page), read it."""
    width, height = page.get_size()  # points, 72 to the inch
    max_pixels = float(limits["max_image_pixels"])
    dpi = float(limits.get("ocr_dpi", 200))
    scale = min(dpi / 72, (max_pixels / max(width * height, 1.0)) ** 0.5)
    return ocr_image(page.render(scale=scale).to_pil(), OcrOptions.from_limits(limits))


def _detect(ocr: Any, page: Any, scale: float) -> tuple[list[Any], float]:
    """Text boxes in ``page`` coordinates, found on the page scaled by ``scale``."""
    import cv2

    started = time.perf_counter()
    height, width = page.shape[:2]
    small = page
    if scale < 1.0 and min(height, width) * scale >= 32:
        size = (max(32, round(width * scale)), max(32, round(height * scale)))
        small = cv2.resize(page, size, interpolation=cv2.INTER_AREA)
    found, _seconds = ocr.text_det(small)
    if found is None or len(found) == 0:
        return [], time.perf_counter() - started
    found[..., 0] *= width / small.shape[1]
    found[..., 1] *= height / small.shape[0]
    boxes = ocr.sorted_boxes(found.astype("float32"))
    return boxes, time.perf_counter() - started


def load_image(path: Path, max_pixels: float, options: OcrOptions | None = None) -> str:
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
            return ocr_image(image, options)
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
