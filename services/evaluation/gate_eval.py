"""The not-found gate through the gateway: each question's best cosine among its passages.

The chat refuses to generate when no passage of a search reaches ``min_score``; this asks the
same search (POST /api/v1/search, the gateway's default mode and rerank) for answerable and
unanswerable questions and tells how often each threshold would refuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.table import Table

from services.client import GatewayClient
from services.evaluation.datasets import EvalSet
from services.evaluation.unanswerable import (
    ANSWERABLE_PAIRS,
    PARALLEL_PAIRS,
    UNANSWERABLE_PAIRS,
    GateCase,
    gate_cases,
    parallel_cases,
    refusal_rates,
)

THRESHOLDS = [round(0.05 * n, 2) for n in range(11)]


def gate_cases_for(sets: Mapping[str, EvalSet], per_pair: int, seed: int) -> list[GateCase]:
    """The default pairs whose two sets were given; a ValueError when none is unanswerable."""

    def given(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(a, b) for a, b in pairs if a in sets and b in sets]

    unanswerable = given(UNANSWERABLE_PAIRS)
    if not unanswerable:
        wanted = sorted({name for pair in UNANSWERABLE_PAIRS for name in pair})
        raise ValueError(f"the gate needs two of the sets {wanted}; got {sorted(sets)}")
    cases = gate_cases(sets, per_pair, seed, given(ANSWERABLE_PAIRS), unanswerable)
    return cases + parallel_cases(sets, per_pair, seed, given(PARALLEL_PAIRS))


def gate_scores(
    client: GatewayClient,
    kb_of: Mapping[str, str],
    cases: Sequence[GateCase],
    top_k: int,
    progress: Callable[[int], None] | None = None,
) -> list[float]:
    """Per case, the best cosine among the passages a chat would get (what the gate reads)."""
    scores = []
    for case in cases:
        hits = client.search(kb_of[case.kb], case.question.text, top_k).hits
        scores.append(max((h.dense_score or 0.0 for h in hits), default=0.0))
        if progress:
            progress(1)
    return scores


def gate_report(cases: Sequence[GateCase], scores: Sequence[float]) -> dict[str, Any]:
    """Refused shares per threshold, for each group of questions."""
    groups = ("answerable", "across languages", "unanswerable")
    by_group = {g: [s for c, s in zip(cases, scores, strict=True) if c.group == g] for g in groups}
    rows = [
        {
            "threshold": t,
            **{g: refusal_rates(v, [], [t])[0].answerable_refused for g, v in by_group.items()},
        }
        for t in THRESHOLDS
    ]
    return {"questions": {g: len(v) for g, v in by_group.items()}, "thresholds": rows}


def gate_table(report: dict[str, Any]) -> Table:
    """Threshold against the share of each group it refuses."""
    counts = report["questions"]
    table = Table("min_score", *(f"{g} refused ({n})" for g, n in counts.items()))
    for row in report["thresholds"]:
        table.add_row(f"{row['threshold']:.2f}", *(f"{100 * row[g]:.1f}%" for g in counts))
    return table
