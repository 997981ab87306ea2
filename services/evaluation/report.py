"""Present evaluation results: rich tables on the terminal, JSON and Markdown files."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

RETRIEVAL_COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
ANSWER_COLUMNS = ("f1", "em", "contains")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented UTF-8 JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _rows(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [*run["sets"].items(), ("all (pooled)", run["overall"])]


def _table(
    title: str,
    scores: Sequence[str],
    latency: dict[str, Callable[[dict[str, Any]], str]],
    run: dict[str, Any],
) -> Table:
    table = Table("set", "questions", "skipped", *scores, *latency, title=title)
    for name, row in _rows(run):
        counts = (str(row["questions"]), str(row.get("skipped", 0)))
        cells = (f"{row[c]:.3f}" for c in scores)
        table.add_row(name, *counts, *cells, *(cell(row) for cell in latency.values()))
    return table


def retrieval_table(run: dict[str, Any]) -> Table:
    """One retrieval run: a row per set and one over the pool."""
    latency = {
        "p50 ms": lambda row: f"{row['latency_ms']['p50']:.0f}",
        "p95 ms": lambda row: f"{row['latency_ms']['p95']:.0f}",
    }
    return _table(run["label"], RETRIEVAL_COLUMNS, latency, run)


def answer_table(result: dict[str, Any]) -> Table:
    """Answer quality: a row per set and one over every question."""
    latency = {"p50 s": lambda row: f"{row['latency_s']['p50']:.1f}"}
    return _table(result.get("model", ""), ANSWER_COLUMNS, latency, result)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def retrieval_markdown(report: dict[str, Any]) -> str:
    """The pooled benchmark as Markdown: configurations side by side, then per set."""
    runs = report["runs"]
    head = ["configuration", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10", "p50 ms"]
    side = [
        [
            r["label"],
            *(f"{r['overall'][c]:.3f}" for c in RETRIEVAL_COLUMNS),
            f"{r['overall']['latency_ms']['p50']:.0f}",
        ]
        for r in runs
    ]
    parts = [
        "# Retrieval benchmark (pooled)",
        "",
        f"Machine: {report['machine']}. Knowledge base `{report['knowledge_base']}` holds every "
        "paragraph of every set, one document each: "
        + ", ".join(f"{k} {v}" for k, v in report["corpus"].items())
        + f" ({sum(report['corpus'].values())} documents).",
        "",
        "Questions: a deterministic sample (seed "
        f"{report['seed']}) of {report['questions_per_set']} per set, searched against the full "
        "pool: " + ", ".join(f"{k} {v}" for k, v in report["questions"].items()) + ". "
        "`drcd-t2s` is the DRCD (Traditional) sample converted to Simplified with OpenCC; it is "
        "not counted in the pooled row." + _skipped_sentence(runs[0]["sets"] if runs else {}),
        "",
        "Ranked list: the documents of the top 10 chunks, in order of their first chunk.",
        "",
        "## Pooled (all sets but drcd-t2s)",
        "",
        _md_table(head, side),
    ]
    for name in runs[0]["sets"] if runs else []:
        rows = [
            [
                r["label"],
                *(f"{r['sets'][name][c]:.3f}" for c in RETRIEVAL_COLUMNS),
                f"{r['sets'][name]['latency_ms']['p50']:.0f}",
            ]
            for r in runs
        ]
        parts += ["", f"## {name}", "", _md_table(head, rows)]
    parts += ["", "## Findings (computed from the rows above)", "", *findings(runs)]
    parts += ["", "## Ingestion", "", "```", json.dumps(report["ingestion"], indent=1), "```"]
    parts += report.get("notes", [])
    return "\n".join(parts) + "\n"


def _skipped_sentence(sets: dict[str, dict[str, Any]]) -> str:
    # Reports written before malformed rows were counted have no "skipped".
    if not any("skipped" in row for row in sets.values()):
        return ""
    counts = ", ".join(f"{name} {row.get('skipped', 0)}" for name, row in sets.items())
    return f" Malformed rows skipped (empty question, no answer or empty paragraph): {counts}."


def _p(row: dict[str, Any], key: str, which: str, digits: int = 1) -> str:
    """A latency percentile in seconds, '–' where the run did not measure it."""
    value = row.get(key, {}).get(which)
    return "–" if not value else f"{value:.{digits}f}"


def answer_markdown(report: dict[str, Any]) -> str:
    """Answer quality as Markdown: a row per set and one over every question."""
    head = ["set", "questions", "skipped", "F1", "EM", "contains gold", "not found",
            "sources p50 s", "first token p50 / p95 s", "answer p50 / p95 s", "errors"]  # fmt: skip
    lines = [
        "# Answer quality (chat)",
        "",
        f"Model: `{report['model']}`. Machine: {report['machine']}. Knowledge base "
        f"`{report['knowledge_base']}` (the pooled corpus of bench.retrieval_pool). Questions: "
        f"{report['asked']} answered of a deterministic sample of {report['per_set']} per set "
        f"(seed {report['seed']}), the sets taking turns; Chinese sets "
        "scored with CMRC-style character F1/EM, English with SQuAD F1/EM; 'contains gold': the "
        "reply contains a gold answer after normalisation; 'skipped': malformed rows of the "
        "dataset file (empty question, no answer or empty paragraph), left out; 'not found': "
        "share of replies that are the not-found sentence; times are what a streaming reader "
        "waits for: the sources event, the first answer text, the whole answer.",
        "",
    ]
    rows = [
        [
            name,
            str(row["questions"]),
            str(row.get("skipped", 0)),
            *(f"{row[c]:.3f}" for c in ANSWER_COLUMNS),
            f"{row.get('not_found', 0.0):.3f}",
            _p(row, "sources_s", "p50", digits=2),
            f"{_p(row, 'first_token_s', 'p50')} / {_p(row, 'first_token_s', 'p95')}",
            f"{_p(row, 'latency_s', 'p50')} / {_p(row, 'latency_s', 'p95')}",
            str(row["errors"]),
        ]
        for name, row in [*report["sets"].items(), ("all", report["overall"])]
    ]
    return "\n".join([*lines, _md_table(head, rows)]) + "\n"


def findings(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Plain statements: does hybrid beat each single mode, does Simplified find Traditional."""
    by_label = {r["label"]: r["overall"] for r in runs}
    lines = []
    for label, row in by_label.items():
        if not label.startswith("hybrid"):
            continue
        for single in ("dense", "keyword"):
            if single in by_label:
                other = by_label[single]
                wins = all(row[m] > other[m] for m in ("mrr@10", "recall@1"))
                lines.append(
                    f"- {label} vs {single}: MRR@10 {row['mrr@10']:.3f} vs {other['mrr@10']:.3f},"
                    f" recall@1 {row['recall@1']:.3f} vs {other['recall@1']:.3f}"
                    f" -> {'better on both' if wins else 'NOT better on both'}"
                )
    for run in runs:
        sets = run["sets"]
        if "drcd" in sets and "drcd-t2s" in sets:
            lines.append(
                f"- {run['label']}: DRCD recall@5 with the Traditional questions "
                f"{sets['drcd']['recall@5']:.3f}, with the same questions in Simplified "
                f"{sets['drcd-t2s']['recall@5']:.3f}"
            )
    return lines
