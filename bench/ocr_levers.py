"""Where OCR time goes on a scanned Chinese page, and what each speed lever costs in accuracy.

    python -m bench.ocr_levers [--pages 5] [--out bench/results]

Part 1 times the stages for a 1-page and a 5-page scanned PDF (A4 at 200 dpi, no text layer):
the bounded parser child end to end, and in fresh processes the interpreter start, the imports,
the model loading; then rendering, detection, classification and recognition per page on a warm
engine. Part 2 reads the same pages with one lever changed at a time (same run, one after the
other): pages/s and character accuracy. Writes ``ocr_levers.json`` and ``ocr_levers.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import RESULTS, machine_line
from services.evaluation.ocr_speed import write_scan
from services.evaluation.parse_corpus import SCAN_DPI

# One lever changed at a time against the defaults (OcrOptions, ParsingSettings' ocr_*).
# Spinning threads are off in every row (onnxruntime's allow_spinning; see ocr._set_threads).
LEVERS: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    (
        "as before: detect at full size, batch 6, threads 0",
        {"det_scale": 1.0, "rec_batch": 6, "threads": 0},
    ),
    ("angle classifier on", {"use_cls": True}),
    ("threads 1", {"threads": 1}),
    ("threads 0 (one per core)", {"threads": 0}),
    ("recognition batch 6 (RapidOCR's default)", {"rec_batch": 6}),
    ("detect at full size", {"det_scale": 1.0}),
    ("detect at 0.35 scale", {"det_scale": 0.35}),
    ("max side 1280", {"max_side": 1280}),
    ("max side 1024", {"max_side": 1024}),
    ("render 150 dpi", {"dpi": 150}),
    ("render 100 dpi", {"dpi": 100}),
]


def _fresh(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (start and exit included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    return time.perf_counter() - started


def stage_times(scan: Path) -> dict[str, float]:
    """Process start, imports and model loading, each in a fresh interpreter (differences)."""
    bare = _fresh("pass")
    child = _fresh("import ingestion.loaders, ingestion.parse_child")
    imports = _fresh("import ingestion.loaders, pypdfium2, rapidocr_onnxruntime")
    loaded = _fresh(
        "import ingestion.loaders, pypdfium2\n"
        "from ingestion.parsers.ocr import OcrOptions, engine\n"
        "engine(OcrOptions())"
    )
    return {
        "interpreter": round(bare, 3),
        "zhiku imports": round(child - bare, 3),
        "pdfium + rapidocr imports": round(imports - child, 3),
        "model loading": round(loaded - imports, 3),
    }


def bounded_seconds(scan: Path) -> float:
    """One document through the bounded child, as the worker parses it."""
    from ingestion.bounded_parse import parse_bounded
    from services.common.settings_sections import ParsingSettings

    started = time.perf_counter()
    parse_bounded(scan, "pdf", ParsingSettings())
    return time.perf_counter() - started


def read_pages(scan: Path, expected: list[str], options: Any, dpi: int) -> dict[str, Any]:
    """Render and OCR every page on a warm engine: seconds per stage and char accuracy."""
    import pypdfium2

    from ingestion.parsers.ocr import engine, ocr_image_timed
    from services.evaluation.parse_eval import char_accuracy

    document = pypdfium2.PdfDocument(scan)
    t0 = time.perf_counter()
    engine(options)  # loaded, and a first page read, before the clock starts: the warm rate
    loaded = time.perf_counter() - t0
    ocr_image_timed(document[0].render(scale=dpi / 72).to_pil(), options)
    first = time.perf_counter() - t0 - loaded
    totals = {"render": 0.0, "detection": 0.0, "classification": 0.0, "recognition": 0.0}
    accuracy: list[float] = []
    started = time.perf_counter()
    for number, want in enumerate(expected):
        t0 = time.perf_counter()
        image = document[number].render(scale=dpi / 72).to_pil()
        totals["render"] += time.perf_counter() - t0
        text, stages = ocr_image_timed(image, options)
        for key, seconds in stages.items():
            totals[key] += seconds
        accuracy.append(char_accuracy(want, text))
    seconds = time.perf_counter() - started
    document.close()
    return {
        "pages_per_s": round(len(expected) / seconds, 3),
        "char_accuracy": round(min(accuracy), 4),
        "load_s": round(loaded, 3),
        "first_page_s": round(first, 3),
        **{f"{key}_s_per_page": round(value / len(expected), 3) for key, value in totals.items()},
    }


def run(pages: int) -> dict[str, Any]:
    from ingestion.parsers.ocr import OcrOptions

    report: dict[str, Any] = {"machine": machine_line(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="zhiku-ocr-") as scratch:
        one, many = Path(scratch) / "one.pdf", Path(scratch) / "many.pdf"
        write_scan(one, 1)
        expected = write_scan(many, pages)
        report["startup"] = stage_times(one)
        report["end_to_end"] = {
            "1 page, seconds": round(bounded_seconds(one), 2),
            f"{pages} pages, seconds": round(bounded_seconds(many), 2),
        }
        report["levers"] = []
        for label, change in LEVERS:
            dpi = int(change.pop("dpi", SCAN_DPI))
            options = OcrOptions(**change)
            row = read_pages(many, expected, options, dpi)
            report["levers"].append({"lever": label, **row})
            print(label, row, file=sys.stderr, flush=True)
    report["load_after"] = os.getloadavg()[0]
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# OCR: where the time goes, and the levers",
        "",
        f"{report['machine']}; load average {report['load_before']:.1f} before, "
        f"{report['load_after']:.1f} after.",
        "",
        "Start-up in fresh processes: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in report["startup"].items())
        + ". Bounded child end to end: "
        + ", ".join(f"{k} {v:.2f}" for k, v in report["end_to_end"].items())
        + ".",
        "",
        "Per page, seconds: render, detection, classification, recognition on a warm engine;"
        " first page: the first page read after loading (onnxruntime's first runs are slow).",
        "",
        "| lever | pages/s (warm) | min char accuracy | render | detection | classif. | recogn. "
        "| model load | first page |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["levers"]:
        lines.append(
            f"| {row['lever']} | {row['pages_per_s']} | {row['char_accuracy']} | "
            f"{row['render_s_per_page']} | {row['detection_s_per_page']} | "
            f"{row['classification_s_per_page']} | {row['recognition_s_per_page']} | "
            f"{row['load_s']} | {row['first_page_s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args.pages)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ocr_levers.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (args.out / "ocr_levers.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
