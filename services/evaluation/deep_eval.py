"""Deep chat against fast chat on questions that need two passages from different documents.

Each joined question asks two questions of one dataset, on two different paragraphs; a reply
counts when it contains a gold answer of both. Both modes get every question, one after the
other, through the streamed POST /api/v1/chat.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from services.client import ChatOptions, GatewayClient, GatewayError
from services.common.schemas import AnswerMode, ChatResponse
from services.evaluation.datasets import EvalSet, Question
from services.evaluation.metrics import answer_scores, latency_ms

MODES: tuple[AnswerMode, ...] = ("fast", "deep")


@dataclass(frozen=True)
class JoinedQuestion:
    """Two questions of one set, on two documents, asked as one."""

    set_name: str
    language: str
    text: str
    parts: tuple[Question, Question]


@dataclass
class DeepResult:
    question: JoinedQuestion
    mode: AnswerMode
    answer: str
    both: bool  # the reply contains a gold answer of each part
    either: bool
    seconds: float
    steps: int
    error: str | None = None


def joined(language: str, first: Question, second: Question) -> str:
    """The two questions as one: "请分别回答：1. … 2. …" / "Answer both: 1. … 2. …"."""
    if language == "en":
        return f"Answer both: 1. {first.text.strip()} 2. {second.text.strip()}"
    return f"请分别回答：1. {first.text.strip()} 2. {second.text.strip()}"


def join_questions(sets: Sequence[EvalSet], count: int, seed: int) -> list[JoinedQuestion]:
    """``count`` joined questions, shared out over the sets, drawn deterministically."""
    rng = random.Random(seed)
    per_set = -(-count // max(1, len(sets)))
    result: list[JoinedQuestion] = []
    for evalset in sets:
        pool = sorted(evalset.questions, key=lambda q: q.question_id)
        rng.shuffle(pool)
        used: set[str] = set()
        made = 0
        for first in pool:
            if made == per_set or first.question_id in used:
                continue
            second = next(
                (
                    q
                    for q in pool
                    if q.gold_document != first.gold_document
                    and q.question_id not in used
                    and q.question_id != first.question_id
                ),
                None,
            )
            if second is None:
                break
            used |= {first.question_id, second.question_id}
            text = joined(evalset.language, first, second)
            result.append(JoinedQuestion(evalset.name, evalset.language, text, (first, second)))
            made += 1
    return result[:count]


def ask_joined(
    client: GatewayClient,
    kb: str,
    questions: Sequence[JoinedQuestion],
    progress: Callable[[int], None] | None = None,
) -> list[DeepResult]:
    """Every joined question in fast mode, then at once in deep mode."""
    results = []
    for question in questions:
        for mode in MODES:
            results.append(_ask(client, kb, question, mode))
            if progress:
                progress(1)
    return results


def _ask(client: GatewayClient, kb: str, question: JoinedQuestion, mode: AnswerMode) -> DeepResult:
    started = time.perf_counter()
    reply: ChatResponse | None = None
    error = None
    messages = [{"role": "user", "content": question.text}]
    try:
        for event in client.chat_stream(kb, messages, ChatOptions(answer_mode=mode)):
            if isinstance(event, ChatResponse):
                reply = event
    except GatewayError as err:  # a failed answer counts as not answered, and is reported
        error = f"{err.error_type}: {err.error}"
    seconds = time.perf_counter() - started
    answer = reply.answer if reply else ""
    found = [
        answer_scores(answer, part.answers, question.language)["contains"] > 0
        for part in question.parts
    ]
    steps = len(reply.steps) if reply else 0
    return DeepResult(question, mode, answer, all(found), any(found), seconds, steps, error)


def deep_report(results: Sequence[DeepResult]) -> dict[str, Any]:
    """Per mode: the share of replies with both gold answers (and either), latency, steps."""
    modes: dict[str, Any] = {}
    for mode in MODES:
        rows = [r for r in results if r.mode == mode]
        n = len(rows) or 1
        modes[mode] = {
            "questions": len(rows),
            "both": sum(r.both for r in rows) / n,
            "either": sum(r.either for r in rows) / n,
            "errors": sum(r.error is not None for r in rows),
            "mean_steps": sum(r.steps for r in rows) / n,
            "latency_s": {k: v / 1000.0 for k, v in latency_ms([r.seconds for r in rows]).items()},
        }
    return {
        "modes": modes,
        "replies": [
            {
                "set": r.question.set_name,
                "mode": r.mode,
                "question": r.question.text,
                "gold": [list(p.answers) for p in r.question.parts],
                "answer": r.answer,
                "both": r.both,
                "steps": r.steps,
                "seconds": round(r.seconds, 2),
                "error": r.error,
            }
            for r in results
        ],
    }


def _cells(row: dict[str, Any]) -> list[str]:
    latency = row["latency_s"]
    return [
        str(row["questions"]),
        f"{100 * row['both']:.1f}%",
        f"{100 * row['either']:.1f}%",
        f"{row['mean_steps']:.2f}",
        f"{latency['p50']:.1f}",
        f"{latency['p95']:.1f}",
        str(row["errors"]),
    ]


HEADER = ("mode", "questions", "both answers", "either", "steps", "p50 s", "p95 s", "errors")


def deep_table(report: dict[str, Any]) -> Table:
    table = Table(*HEADER)
    for mode, row in report["modes"].items():
        table.add_row(mode, *_cells(row))
    return table


def deep_markdown(report: dict[str, Any]) -> str:
    """The per-mode table as Markdown, with what was measured."""
    lines = [
        "# Deep chat: questions needing two documents",
        "",
        f"Knowledge base `{report.get('knowledge_base', '')}`, model "
        f"`{report.get('model', 'unknown')}`, seed {report.get('seed', 0)}. Each question joins "
        "two questions of one dataset on two different paragraphs; *both answers*: the reply "
        "contains a gold answer of each.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for mode, row in report["modes"].items():
        lines.append("| " + " | ".join([mode, *_cells(row)]) + " |")
    return "\n".join(lines) + "\n"
