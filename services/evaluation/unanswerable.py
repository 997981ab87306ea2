"""Questions a knowledge base cannot answer, beside ones it can: the not-found gate's test set.

An unanswerable question is one set's question asked against a knowledge base built from another
set's paragraphs (XQuAD-zh against CMRC, ...); an answerable one is asked against its own set.
Both are sampled with a seed, so a run can be repeated and compared.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.evaluation.datasets import EvalSet, Question

# (questions of, asked against the knowledge base of)
ANSWERABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("cmrc", "cmrc"),
    ("xquad-zh", "xquad-zh"),
    ("xquad-en", "xquad-en"),
)
UNANSWERABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("xquad-zh", "cmrc"),
    ("cmrc", "xquad-zh"),
    ("xquad-en", "cmrc"),
)
# Translations of one set: a question is answered by the same paragraph in the other language.
PARALLEL_PAIRS: tuple[tuple[str, str], ...] = (("xquad-en", "xquad-zh"),)
# Shorter answers ("1990", "北京") turn up anywhere; they do not make a question answerable.
MIN_LEAK_CHARS = 3


@dataclass(frozen=True)
class GateCase:
    """A question, the set whose paragraphs make the knowledge base, and whether it answers it."""

    question: Question
    kb: str
    answerable: bool

    @property
    def group(self) -> str:
        """``answerable``, ``across languages`` (asked of a translation) or ``unanswerable``."""
        if not self.answerable:
            return "unanswerable"
        return "answerable" if self.question.set_name == self.kb else "across languages"


def gate_cases(
    sets: Mapping[str, EvalSet],
    per_pair: int,
    seed: int,
    answerable: Sequence[tuple[str, str]] = ANSWERABLE_PAIRS,
    unanswerable: Sequence[tuple[str, str]] = UNANSWERABLE_PAIRS,
) -> list[GateCase]:
    """``per_pair`` questions of each pair, answerable pairs first, the same for the same seed."""
    cases: list[GateCase] = []
    for (asked, kb), can in [(p, True) for p in answerable] + [(p, False) for p in unanswerable]:
        if (asked == kb) != can:
            raise ValueError(f"{asked} against {kb}: answerable pairs ask a set of itself")
        pool = _answerable(sets[asked]) if can else _unanswerable(sets[asked], sets[kb])
        rng = random.Random(f"{seed}:{asked}->{kb}")
        picked = rng.sample(pool, min(per_pair, len(pool)))
        cases += [GateCase(q, kb, can) for q in picked]
    return cases


def parallel_cases(
    sets: Mapping[str, EvalSet],
    per_pair: int,
    seed: int,
    pairs: Sequence[tuple[str, str]] = PARALLEL_PAIRS,
) -> list[GateCase]:
    """Answerable across languages: questions asked against their set's translation.

    The gold document becomes the translated paragraph (same paragraph id in the other set).
    """
    cases: list[GateCase] = []
    for asked, kb in pairs:
        translated = {p.paragraph_id: p.filename for p in sets[kb].paragraphs}
        own = {p.filename: p.paragraph_id for p in sets[asked].paragraphs}
        pool = [
            replace(q, gold_document=translated[own[q.gold_document]])
            for q in _answerable(sets[asked])
            if own[q.gold_document] in translated
        ]
        rng = random.Random(f"{seed}:{asked}=>{kb}")
        cases += [GateCase(q, kb, True) for q in rng.sample(pool, min(per_pair, len(pool)))]
    return cases


def _answerable(evalset: EvalSet) -> list[Question]:
    documents = {p.filename for p in evalset.paragraphs}
    return [q for q in evalset.questions if q.gold_document in documents]


def _unanswerable(asked: EvalSet, kb: EvalSet) -> list[Question]:
    """Questions of ``asked`` whose paragraph is not in ``kb`` and whose answer ``kb`` lacks."""
    kb_names = {p.filename for p in kb.paragraphs}
    kb_texts = {p.text for p in kb.paragraphs}
    gold = {p.filename: p.text for p in asked.paragraphs}
    corpus = "\n".join(p.text for p in kb.paragraphs).lower()
    return [
        q
        for q in asked.questions
        if q.gold_document not in kb_names
        and gold.get(q.gold_document) not in kb_texts
        and not any(len(a) >= MIN_LEAK_CHARS and a.lower() in corpus for a in q.answers)
    ]


@dataclass(frozen=True)
class GateRow:
    """One threshold: the share of answerable and of unanswerable questions it refuses."""

    threshold: float
    answerable_refused: float
    unanswerable_refused: float


def refusal_rates(
    answerable: Sequence[float], unanswerable: Sequence[float], thresholds: Sequence[float]
) -> list[GateRow]:
    """Per threshold, the refused shares; a question is refused when its signal is below it."""

    def below(values: Sequence[float], t: float) -> float:
        return sum(v < t for v in values) / len(values) if values else 0.0

    return [GateRow(t, below(answerable, t), below(unanswerable, t)) for t in thresholds]


def choose_gate(
    rows: Sequence[GateRow],
    max_wrong: float = 0.05,
    min_refused: float = 0.90,
    fallback_wrong: float = 0.02,
) -> tuple[GateRow, bool]:
    """The threshold to ship, and whether it separates the two kinds.

    Separating: refuses at least ``min_refused`` of unanswerable questions and at most
    ``max_wrong`` of answerable ones (the most unanswerable refused wins). Otherwise the highest
    threshold refusing at most ``fallback_wrong`` of answerable questions.
    """
    good = [r for r in rows if r.answerable_refused <= max_wrong]
    good = [r for r in good if r.unanswerable_refused >= min_refused]
    if good:
        return max(good, key=lambda r: (r.unanswerable_refused, -r.answerable_refused)), True
    safe = [r for r in rows if r.answerable_refused <= fallback_wrong]
    if not safe:
        raise ValueError(f"no threshold refuses at most {fallback_wrong:.0%} of answerable ones")
    return max(safe, key=lambda r: r.threshold), False
