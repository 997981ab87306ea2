"""Built-in evaluation: retrieval and answer quality measured through the real gateway API.

The public interface of the package, used by ``zhiku eval`` and by bench.
"""

from services.evaluation.answer_eval import AnswerResult, ask_all, ask_one, score_answers
from services.evaluation.corpus import IngestSummary, fill_kb, prepare_kb
from services.evaluation.datasets import (
    EvalSet,
    Paragraph,
    Question,
    default_datasets_dir,
    load_squad,
    sample_set,
    simplified_variant,
)
from services.evaluation.gate_eval import gate_cases_for, gate_report, gate_scores, gate_table
from services.evaluation.metrics import answer_scores, latency_ms, ranking_scores
from services.evaluation.report import (
    ANSWER_COLUMNS,
    RETRIEVAL_COLUMNS,
    answer_markdown,
    answer_table,
    retrieval_markdown,
    retrieval_table,
    write_json,
)
from services.evaluation.retrieval_eval import (
    QuestionResult,
    RetrievalConfig,
    score_results,
    search_all,
)
from services.evaluation.runner import counting, ensure_corpus, load_sets
from services.evaluation.unanswerable import (
    GateCase,
    GateRow,
    choose_gate,
    gate_cases,
    parallel_cases,
    refusal_rates,
)

__all__ = [
    "ANSWER_COLUMNS",
    "RETRIEVAL_COLUMNS",
    "AnswerResult",
    "EvalSet",
    "GateCase",
    "GateRow",
    "IngestSummary",
    "Paragraph",
    "Question",
    "QuestionResult",
    "RetrievalConfig",
    "answer_markdown",
    "answer_scores",
    "answer_table",
    "ask_all",
    "ask_one",
    "choose_gate",
    "counting",
    "default_datasets_dir",
    "ensure_corpus",
    "fill_kb",
    "gate_cases",
    "gate_cases_for",
    "gate_report",
    "gate_scores",
    "gate_table",
    "latency_ms",
    "load_sets",
    "load_squad",
    "parallel_cases",
    "prepare_kb",
    "ranking_scores",
    "refusal_rates",
    "retrieval_markdown",
    "retrieval_table",
    "sample_set",
    "score_answers",
    "score_results",
    "search_all",
    "simplified_variant",
    "write_json",
]
