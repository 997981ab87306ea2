"""The parts of the answer run beyond the answerable sample: questions the knowledge base cannot
answer, raw llama.cpp evaluating the whole-passage prompt on the same machine, and each latency
lever switched off in turn on a subsample (bench.answers calls these in one run).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, cast

import llama_cpp

from bench.suite import running_suite
from llm_worker.prompts import build_messages
from services.client import ChatOptions, GatewayClient
from services.common.generation_schemas import ContextPassage, GenerationRequest
from services.common.settings import LLMSettings
from services.evaluation import AnswerResult, EvalSet, Question, ask_one, fill_kb, prepare_kb
from services.evaluation.unanswerable import gate_cases

# The not-found set: questions of these sets asked of a knowledge base holding only CMRC's
# paragraphs, keeping those whose answer CMRC lacks (services/evaluation/unanswerable.py).
NOT_IN_KB = "bench-cmrc-only"
NOT_IN_KB_PAIRS = (("xquad-zh", "cmrc"), ("xquad-en", "cmrc"), ("drcd", "cmrc"))

# Each lever off in turn (the environment of the suite that answers); the default is every lever on.
LEVERS_OFF: dict[str, dict[str, str]] = {
    "passages whole (no token budget)": {"ZHIKU_LLM__CONTEXT_TOKENS": "0"},
    "previous budget 600 tokens": {"ZHIKU_LLM__CONTEXT_TOKENS": "600"},
    "no saved prefix state": {"ZHIKU_LLM__PREFIX_STATES": "0"},
    "no grounding hold": {"ZHIKU_LLM__GROUNDING_HOLD": "false"},
    "previous gate 0.25": {"ZHIKU_RETRIEVAL__MIN_SCORE": "0.25"},
    "previous grounding share 0.3": {"ZHIKU_LLM__GROUNDING_SUPPORT": "0.3"},
}


@dataclass
class NotFoundRun:
    """Unanswerable questions and what the suite replied to each."""

    results: list[AnswerResult]

    def summary(self) -> dict[str, Any]:
        n = len(self.results)
        times = sorted(r.seconds for r in self.results)
        return {
            "questions": n,
            "not_found": sum(r.not_found for r in self.results) / n if n else 0.0,
            "answer_p50_s": round(median(times), 2) if times else None,
            "errors": sum(r.error is not None for r in self.results),
            "samples": [
                {"set": r.question.set_name, "id": r.question.question_id,
                 "question": r.question.text, "answer": r.answer, "not_found": r.not_found,
                 "seconds": round(r.seconds, 2), "error": r.error}
                for r in self.results
            ],
        }  # fmt: skip


def not_found_run(
    client: GatewayClient, sets: dict[str, EvalSet], per_pair: int, seed: int
) -> NotFoundRun:
    """Ask ``per_pair`` unanswerable questions of each pair against the CMRC-only base."""
    prepare_kb(client, NOT_IN_KB, reuse=True)
    fill_kb(client, NOT_IN_KB, sets["cmrc"].paragraphs)
    cases = gate_cases(sets, per_pair, seed, answerable=(), unanswerable=NOT_IN_KB_PAIRS)
    language = {name: s.language for name, s in sets.items()}
    options = ChatOptions()
    return NotFoundRun(
        [
            ask_one(client, NOT_IN_KB, c.question, language[c.question.set_name], options)
            for c in cases
        ]
    )


def raw_prompt_reference(
    model: Path, client: GatewayClient, kb: str, questions: Sequence[Question]
) -> dict[str, Any]:
    """Raw llama-cpp-python's time to first token on the prompt zhiku built before its levers:
    rules, worked examples and the top five passages whole, evaluated from an empty context."""
    settings = LLMSettings()
    llm = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        verbose=False,
    )
    rows = []
    for question in questions:
        hits = client.search(kb, question.text, top_k=5).hits
        passages = [
            ContextPassage(index=i, document_name=h.document_name, text=h.text)
            for i, h in enumerate(hits, 1)
        ]
        messages = build_messages(
            GenerationRequest(stream_id="raw", question=question.text, passages=passages)
        )
        llm.reset()  # nothing of the previous prompt is reused
        start = time.perf_counter()
        stream: Any = llm.create_chat_completion(
            messages=cast(Any, messages), stream=True, max_tokens=1, temperature=0.0
        )
        for _ in stream:
            pass
        seconds = time.perf_counter() - start
        rows.append({"prompt_tokens": llm.n_tokens, "first_token_s": round(seconds, 2)})
    del llm
    tokens = median(r["prompt_tokens"] for r in rows)
    first = median(r["first_token_s"] for r in rows)
    return {
        "questions": len(rows),
        "prompt_tokens_p50": tokens,
        "first_token_p50_s": first,
        "prompt_tokens_per_s": round(tokens / first, 1),
        "rows": rows,
    }


def lever_runs(
    data_dir: Path,
    kb: str,
    subsample: Sequence[tuple[Question, str]],
    default: Sequence[AnswerResult],
) -> list[dict[str, Any]]:
    """The subsample answered with each lever off, one suite per lever, beside the default run."""
    rows = [_lever_row("every lever on (default)", default)]
    for label, env in LEVERS_OFF.items():
        before = {k: os.environ.get(k) for k in env}
        try:
            with running_suite(data_dir, env) as gateway, GatewayClient(gateway, timeout=600) as c:
                results = [ask_one(c, kb, q, lang, ChatOptions()) for q, lang in subsample]
        finally:
            for k, v in before.items():  # running_suite exports ZHIKU_ variables: put them back
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        rows.append(_lever_row(label, results))
    return rows


def _lever_row(label: str, results: Sequence[AnswerResult]) -> dict[str, Any]:
    def p50(values: list[float | None]) -> float | None:
        kept = [v for v in values if v is not None]
        return round(median(kept), 2) if kept else None

    n = len(results)
    return {
        "label": label,
        "questions": n,
        "contains": round(sum(r.scores["contains"] for r in results) / n, 3) if n else 0.0,
        "not_found": round(sum(r.not_found for r in results) / n, 3) if n else 0.0,
        "sources_p50_s": p50([r.sources_s for r in results]),
        "first_token_p50_s": p50([r.first_token_s for r in results]),
        "answer_p50_s": p50([r.seconds for r in results]),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def levers_markdown(report: dict[str, Any]) -> str:
    """The not-found set, the raw reference and the lever table, under the answer table."""
    lines: list[str] = []
    nf = report.get("not_in_kb")
    if nf:
        lines += [
            "",
            "## Questions the knowledge base cannot answer",
            "",
            f"{nf['questions']} questions of XQuAD-zh, XQuAD-en and DRCD asked of a "
            f"knowledge base of CMRC's paragraphs only, answer not in it: replied "
            f"not-found {nf['not_found']:.3f}; answer p50 {nf['answer_p50_s']} s; "
            f"errors {nf['errors']}.",
        ]
    raw = report.get("raw_reference")
    if raw:
        ft = report["overall"]["first_token_s"].get("p50")
        ratio = f"{ft / raw['first_token_p50_s']:.2f}×" if ft else "n/a"
        lines += [
            "",
            "## Against raw llama.cpp on the whole-passage prompt",
            "",
            f"Raw llama-cpp-python, same model and threads, evaluating the prompt zhiku "
            f"built before the levers (rules, examples, five passages whole; p50 "
            f"{raw['prompt_tokens_p50']:.0f} tokens) from an empty context: first token "
            f"p50 {raw['first_token_p50_s']} s ({raw['prompt_tokens_per_s']} prompt "
            f"tokens/s on this machine). zhiku's first token p50 above is {ratio} of it.",
        ]
    levers = report.get("levers")
    if levers:
        lines += [
            "",
            "## Each lever off in turn",
            "",
            f"The same {levers[0]['questions']} questions (the first of each set in the "
            "sample), one suite per row; the default row is those questions' answers "
            "from the run above; load average (1 min) when each row ended.",
            "",
            "| lever | contains gold | not found | sources p50 s | first token p50 s "
            "| answer p50 s | load avg |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['label']} | {r['contains']:.3f} | {r['not_found']:.3f} | {r['sources_p50_s']} "
            f"| {r['first_token_p50_s']} | {r['answer_p50_s']} | {r['load_avg_1m']} |"
            for r in levers
        ]
    return "\n".join(lines) + ("\n" if lines else "")
