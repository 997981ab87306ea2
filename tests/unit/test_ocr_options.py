"""OCR options from the parsing settings, and reading with detection on a scaled-down page."""

from __future__ import annotations

import pytest

from ingestion.parsers.ocr import OcrOptions, ocr_image
from services.common.settings import Settings
from services.common.settings_sections import ParsingSettings
from services.evaluation.parse_corpus import CJK_FONT, ZH_TEXT, scan_image
from services.evaluation.parse_eval import char_accuracy, parse_table

needs_font = pytest.mark.skipif(not CJK_FONT.exists(), reason="needs fonts-noto-cjk")


def test_options_default_to_the_parsing_settings() -> None:
    assert OcrOptions.from_limits(ParsingSettings().model_dump()) == OcrOptions()


def test_options_follow_zhiku_parsing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_PARSING__OCR_DET_SCALE", "0.4")
    monkeypatch.setenv("ZHIKU_PARSING__OCR_THREADS", "1")
    monkeypatch.setenv("ZHIKU_PARSING__OCR_ANGLE_CLASSIFIER", "true")
    options = OcrOptions.from_limits(Settings().parsing.model_dump())
    assert (options.det_scale, options.threads, options.use_cls) == (0.4, 1, True)


def test_detection_scale_must_be_a_reduction() -> None:
    with pytest.raises(ValueError, match="ocr_det_scale"):
        ParsingSettings(ocr_det_scale=1.5)


@needs_font
@pytest.mark.timeout(120)
@pytest.mark.parametrize("det_scale", [1.0, 0.5])
def test_lines_found_on_a_smaller_page_are_read_at_full_size(det_scale: float) -> None:
    image = scan_image(ZH_TEXT[:3])
    text = ocr_image(image, OcrOptions(det_scale=det_scale))
    assert char_accuracy("".join(ZH_TEXT[:3]), text) >= 0.95
    assert text.split("\n")[0].startswith(ZH_TEXT[0][:10])  # lines in reading order


def test_the_eval_caption_gives_ocr_pages_per_s_warm_and_end_to_end() -> None:
    report = {
        "documents": [],
        "text_layer_docs_per_s": 4.0,
        "ocr_pages_per_s": 0.5,
        "ocr_warm_pages_per_s": 0.8,
        "ocr_5_page_scan_pages_per_s": 0.6,
        "ocr_min_char_accuracy": 0.99,
    }
    caption = str(parse_table(report).caption)
    assert "OCR warm pages/s: 0.8" in caption and "5-page scan end to end: 0.6" in caption
