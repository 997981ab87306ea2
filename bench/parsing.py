"""Parse quality and speed on the generated corpus, as ``zhiku eval parsing`` reports them.

    python -m bench.parsing [--out bench/results]

Character accuracy and table-cell recall per document; text-layer documents/s and OCR pages/s
(one-page scans end to end, a warm engine, and a 5-page scan end to end), all in this run.
Writes bench/results/parsing.json and parsing.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench.report import RESULTS, machine_line, write_results


def markdown(report: dict[str, Any]) -> str:
    from services.evaluation.parse_eval import ocr_caption

    lines = [
        "# Parse quality and speed (generated corpus)",
        "",
        f"{machine_line()}; load average {report['load_average']:.1f} before the run.",
        "",
        "| document | kind | OCR | char accuracy | cell recall | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for doc in report["documents"]:
        cells = [doc["name"], doc["kind"], "yes" if doc["scanned"] else ""]
        if doc["error"]:
            cells += [f"error: {doc['error']}", "", ""]
        else:
            cells += [_fmt(doc["char_accuracy"]), _fmt(doc["cell_recall"]), f"{doc['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Text-layer documents/s: {report['text_layer_docs_per_s']}; one-page scans end to end: "
        f"{report['ocr_pages_per_s']} OCR pages/s; {ocr_caption(report)}.",
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    from ingestion.loaders import load_text
    from services.common.settings import Settings
    from services.evaluation.ocr_speed import ocr_speed
    from services.evaluation.parse_eval import parse_report, run_parse_eval

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    limits = Settings().parsing
    report: dict[str, Any] = {"load_average": os.getloadavg()[0]}
    report.update(parse_report(run_parse_eval(lambda path, kind: load_text(path, kind, limits))))
    report.update(ocr_speed(limits))
    write_results("parsing", report, markdown(report), args.out)
    print(markdown(report))


if __name__ == "__main__":
    main()
