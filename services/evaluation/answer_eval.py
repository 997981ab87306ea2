"""Ask each sampled question through POST /api/v1/chat and score the reply against gold answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.client import ChatOptions, GatewayClient, GatewayError
from services.common.answers import is_not_found
from services.common.schemas import ChatResponse, SearchMode, SourcesEvent
from services.evaluation.datasets import EvalSet, Question
from services.evaluation.metrics import answer_scores, latency_ms

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int], None]


@dataclass
class AnswerResult:
    """One question's reply, its scores and how long the answer took."""

    question: Question
    language: str
    answer: str
    scores: dict[str, float]
    seconds: float
    error: str | None = None
    sources_s: float | None = None  # when the sources event came (streamed replies)
    first_token_s: float | None = None  # when the first answer text came
    not_found: bool = False  # the reply is the not-found sentence


def ask_all(
    client: GatewayClient,
    kb: str,
    sets: Sequence[EvalSet],
    mode: SearchMode | None = None,
    progress: ProgressFn | None = None,
) -> list[AnswerResult]:
    """Ask every question of every set once, without conversation history."""
    results = []
    options = ChatOptions(mode=mode)
    for evalset in sets:
        language = evalset.language
        for question in evalset.questions:
            results.append(ask_one(client, kb, question, language, options))
            if progress:
                progress(1)
    return results


def ask_one(
    client: GatewayClient, kb: str, question: Question, language: str, options: ChatOptions
) -> AnswerResult:
    """One question through the streamed POST /api/v1/chat, scored and timed as a reader sees it:
    when the sources came, when the first answer text came and when the answer was whole.
    A failed reply scores 0 and says why."""
    started = time.perf_counter()
    answer, error = "", None
    sources_s = first_token_s = None
    try:
        for event in client.chat_stream(kb, [{"role": "user", "content": question.text}], options):
            now = time.perf_counter() - started
            if isinstance(event, SourcesEvent):
                sources_s = now
            elif isinstance(event, str):
                first_token_s = now if first_token_s is None else first_token_s
            elif isinstance(event, ChatResponse):
                answer = event.answer
    except GatewayError as err:  # a failed answer scores 0 and is counted, not hidden
        answer, error = "", f"{err.error_type}: {err.error}"
        logger.warning("question %s failed: %s", question.question_id, error)
    seconds = time.perf_counter() - started
    scores = answer_scores(answer, question.answers, language)
    not_found = is_not_found(answer)  # a Traditional question gets it in Traditional
    return AnswerResult(
        question, language, answer, scores, seconds, error, sources_s, first_token_s, not_found
    )


def _summary(results: Sequence[AnswerResult]) -> dict[str, Any]:
    n = len(results)
    mean = {
        key: (sum(r.scores[key] for r in results) / n if n else 0.0)
        for key in ("f1", "em", "contains")
    }

    def seconds(values: Sequence[float | None]) -> dict[str, float]:
        latency = latency_ms([v for v in values if v is not None])
        return {key: value / 1000.0 for key, value in latency.items()}

    return {
        "questions": n,
        **mean,
        "errors": sum(r.error is not None for r in results),
        "not_found": sum(r.not_found for r in results) / n if n else 0.0,
        "latency_s": seconds([r.seconds for r in results]),
        "first_token_s": seconds([r.first_token_s for r in results]),
        "sources_s": seconds([r.sources_s for r in results]),
    }


def score_answers(results: Sequence[AnswerResult], sets: Sequence[EvalSet]) -> dict[str, Any]:
    """Mean F1, EM and gold-contained share per set and over every question.

    ``skipped``: the malformed rows the dataset files left out (see load_squad).
    """
    return {
        "overall": {**_summary(results), "skipped": sum(s.skipped for s in sets)},
        "sets": {
            s.name: {
                **_summary([r for r in results if r.question.set_name == s.name]),
                "skipped": s.skipped,
            }
            for s in sets
        },
        "samples": [
            {
                "set": r.question.set_name,
                "id": r.question.question_id,
                "question": r.question.text,
                "gold": list(r.question.answers),
                "answer": r.answer,
                **r.scores,
                "seconds": round(r.seconds, 2),
                "first_token_s": None if r.first_token_s is None else round(r.first_token_s, 2),
                "sources_s": None if r.sources_s is None else round(r.sources_s, 2),
                "not_found": r.not_found,
                "error": r.error,
            }
            for r in results
        ],
    }
