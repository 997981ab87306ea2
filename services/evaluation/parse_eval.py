"""Parse quality on the generated corpus: character accuracy, reading order, table-cell recall.

Character accuracy is 1 − (edit distance ÷ expected length) between the known running text and
the parsed text outside tables, whitespace removed (a line break is not a parsing error). The
reading-order error is the share of consecutive expected paragraphs that the parsed text does not
give in that order (the second found before the first, or either not found): text read across
two columns interleaves them. A
table cell counts when a parsed table with the expected header has the cell in its row (found
by the row's first cell) and in the header's column. Each document is parsed the way the
ingestion worker parses it: in the bounded child, within the parsing limits.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.evaluation.parse_corpus import ParseCase, write_corpus

if TYPE_CHECKING:
    from rich.table import Table

_TABLE_LINE = re.compile(r"^\|.*\|$")
_SEPARATOR = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")
_HEADING = re.compile(r"^#{1,6} (?:Sheet: .*|Slide \d+.*)$")

Parser = Callable[[Path, str], str]


@dataclass
class ParseScore:
    """How well one document parsed."""

    name: str
    kind: str
    scanned: bool
    seconds: float
    char_accuracy: float | None
    cell_recall: float | None
    order_errors: float | None = None
    error: str | None = None


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table in ``text`` as (header cells, body rows of cells)."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and _TABLE_LINE.match(line) and _SEPARATOR.match(lines[i + 1]):
            rows = []
            for body in lines[i + 2 :]:
                if not _TABLE_LINE.match(body):
                    break
                rows.append(_cells(body))
            tables.append((_cells(line), rows))
    return tables


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def cell_recall(expected: list[list[str]], text: str) -> float:
    """Share of the expected body cells found under the right header, in the right row."""
    header, body = expected[0], expected[1:]
    rows_by_key: dict[str, list[str]] = {}
    for found_header, rows in markdown_tables(text):
        if found_header == header:
            rows_by_key.update({row[0]: row for row in rows if row})
    total = sum(len(row) for row in body)
    hits = 0
    for row in body:
        found = rows_by_key.get(row[0], [])
        hits += sum(1 for j, cell in enumerate(row) if j < len(found) and found[j] == cell)
    return hits / total if total else 1.0


def char_accuracy(expected: str, text: str) -> float:
    """1 − normalised edit distance, ignoring whitespace, table lines and slide/sheet headings."""
    from rapidfuzz.distance import Levenshtein

    want, got = _squeeze(expected), _squeeze(_running_text(text))
    if not want:
        return 1.0
    return max(0.0, 1.0 - Levenshtein.distance(want, got) / len(want))


def order_errors(expected: list[str], text: str) -> float:
    """Share of consecutive paragraph pairs not found in the expected order (0 is perfect)."""
    got = _squeeze(_running_text(text))
    places = [_place(_squeeze(paragraph), got) for paragraph in expected]
    pairs = list(pairwise(places))
    if not pairs:
        return 0.0
    wrong = sum(1 for a, b in pairs if a is None or b is None or b <= a)
    return wrong / len(pairs)


def _place(paragraph: str, text: str) -> int | None:
    """Where the paragraph starts in ``text``: exactly, else its best close match (≥ 90 %)."""
    from rapidfuzz import fuzz

    if (found := text.find(paragraph)) >= 0:
        return found
    match = fuzz.partial_ratio_alignment(paragraph, text, score_cutoff=90)
    return None if match is None else match.dest_start


def _running_text(text: str) -> str:
    """The text less table lines and slide/sheet headings."""
    kept = (
        line for line in text.split("\n") if not (_TABLE_LINE.match(line) or _HEADING.match(line))
    )
    return "\n".join(kept)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def score_case(case: ParseCase, path: Path, parse: Parser) -> ParseScore:
    """Parse one document and score it; a refusal is scored with its reason."""
    started = time.perf_counter()
    try:
        text = parse(path, case.kind)
    except Exception as exc:  # any failure is a result of the evaluation, not a crash of it
        return ParseScore(case.name, case.kind, case.scanned, 0.0, None, None, error=str(exc))
    seconds = time.perf_counter() - started
    accuracy = char_accuracy("".join(case.text), text) if case.text else None
    recall = cell_recall(case.table, text) if case.table else None
    order = order_errors(case.text, text) if len(case.text) > 1 else None
    return ParseScore(case.name, case.kind, case.scanned, seconds, accuracy, recall, order)


def run_parse_eval(parse: Parser, folder: Path | None = None) -> list[ParseScore]:
    """Write the corpus (into a temporary folder unless given) and score every document."""
    with tempfile.TemporaryDirectory(prefix="zhiku-parse-eval-") as scratch:
        cases = write_corpus(folder or Path(scratch))
        return [score_case(case, path, parse) for case, path in cases]


def parse_report(scores: list[ParseScore]) -> dict[str, Any]:
    """Per-document scores, and documents per second with and without OCR.

    Every scanned document of the corpus is one page, so its rate is OCR pages per second.
    """
    ok = [score for score in scores if score.error is None]
    summary: dict[str, Any] = {}
    for scanned, label in ((False, "text_layer_docs_per_s"), (True, "ocr_pages_per_s")):
        group = [score for score in ok if score.scanned is scanned]
        seconds = sum(score.seconds for score in group)
        summary[label] = round(len(group) / seconds, 3) if seconds else None
    return {"documents": [asdict(score) for score in scores], **summary}


def parse_table(report: dict[str, Any]) -> Table:
    """The report as a console table: a row per document, the rates in the caption."""
    from rich.table import Table

    table = Table(title="parse quality (generated corpus)")
    columns = ("document", "kind", "OCR", "char accuracy", "order errors", "cell recall", "seconds")
    for column in columns:
        table.add_column(column)
    for doc in report["documents"]:
        if doc["error"]:
            table.add_row(doc["name"], doc["kind"], "", f"[red]{doc['error']}[/red]", "", "", "")
            continue
        table.add_row(
            doc["name"],
            doc["kind"],
            "yes" if doc["scanned"] else "",
            _fmt(doc["char_accuracy"]),
            _fmt(doc.get("order_errors")),
            _fmt(doc["cell_recall"]),
            f"{doc['seconds']:.2f}",
        )
    table.caption = (
        f"text-layer documents/s: {report['text_layer_docs_per_s']}; "
        f"OCR pages/s: {report['ocr_pages_per_s']}"
    )
    if "ocr_warm_pages_per_s" in report:  # services.evaluation.ocr_speed
        table.caption += "; " + ocr_caption(report)
    return table


def ocr_caption(report: dict[str, Any]) -> str:
    """OCR pages/s warm and for a multi-page scan end to end, with the lowest accuracy."""
    scan = next(key for key in report if key.endswith("_page_scan_pages_per_s"))
    pages = scan.removeprefix("ocr_").split("_")[0]
    return (
        f"OCR warm pages/s: {report['ocr_warm_pages_per_s']}; {pages}-page scan end to end: "
        f"{report[scan]} pages/s (char accuracy ≥ {report['ocr_min_char_accuracy']})"
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
