"""What of the passages goes into the prompt: the question's best sentences, up to a token budget.

Prompt evaluation is most of an answer's time on a CPU, and most of a 500-character chunk does not
bear on the question. Each passage keeps its index, so a citation [n] still names the chunk the
sentence came from, and the gateway checks answers against the whole chunk texts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llm_worker.prompts import format_passages
from services.common.answers import content_units
from services.common.generation_schemas import ContextPassage

# A sentence ends at a Chinese stop (always), an ASCII stop followed by space or the end, or a line
# break; closing quotes and brackets stay with the sentence they close.
_BOUNDARY = re.compile(r"[。！？；]+[”’」』）\"')]*\s*|[.;!?]+[”’」』）\"')]*(?:\s+|$)|\n\s*")
_CLAUSE = re.compile(r"[，、：,:]\s*")
MAX_SENTENCE_CHARS = 200
ELISION = " … "

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class _Sentence:
    passage: int  # position in the ranked passage list
    position: int  # position within its passage
    text: str  # as in the passage, trailing spaces included
    score: float


def _cut(piece: str, limit: int) -> list[str]:
    """``piece`` in parts of at most ``limit`` characters, broken after clauses where possible."""
    clauses: list[str] = []
    start = 0
    for match in _CLAUSE.finditer(piece):
        clauses.append(piece[start : match.end()])
        start = match.end()
    clauses.append(piece[start:])
    parts = [""]
    for clause in clauses:
        for i in range(0, len(clause), limit):  # a clause longer than limit: hard cuts
            bit = clause[i : i + limit]
            if len(parts[-1]) + len(bit) > limit:
                parts.append("")
            parts[-1] += bit
    return [part for part in parts if part]


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """``text`` in sentences (Chinese and Western stops), each at most ``max_chars`` long.

    Joining the result gives back ``text``; a sentence keeps the spaces that follow it.
    """
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    result: list[str] = []
    for piece in pieces:
        result.extend(_cut(piece, max_chars) if len(piece) > max_chars else [piece])
    return result


def _weight(units: set[str]) -> float:
    # A shared single Chinese character says less than a shared word or character pair.
    return sum(0.5 if len(u) == 1 and u >= "\u3400" else 1.0 for u in units)


def _normalized(text: str) -> str:
    return " ".join(text.split()).lower()


def _sentences(question: str, passages: list[ContextPassage]) -> list[list[_Sentence | None]]:
    """Per passage, its scored sentences; None where a sentence repeats an earlier one."""
    wanted = content_units(question)
    seen: set[str] = set()
    table: list[list[_Sentence | None]] = []
    for rank, passage in enumerate(passages):
        row: list[_Sentence | None] = []
        for position, text in enumerate(split_sentences(passage.text)):
            key = _normalized(text)
            if not key or key in seen:
                row.append(None)  # overlapping chunks repeat their shared sentences
                continue
            seen.add(key)
            score = _weight(wanted & content_units(text))
            row.append(_Sentence(rank, position, text, score))
        table.append(row)
    return table


def _assemble(
    passages: list[ContextPassage], table: list[list[_Sentence | None]], chosen: set[_Sentence]
) -> list[ContextPassage]:
    """The chosen sentences, passages in rank order, sentences in document order, gaps marked."""
    result: list[ContextPassage] = []
    for passage, row in zip(passages, table, strict=True):
        runs: list[str] = []
        previous = -2
        for sentence in row:
            if sentence is None or sentence not in chosen:
                continue
            if sentence.position == previous + 1 and runs:
                runs[-1] += sentence.text
            else:
                runs.append(sentence.text)
            previous = sentence.position
        if runs:
            text = ELISION.join(run.strip() for run in runs)
            result.append(passage.model_copy(update={"text": text}))
    return result


def _window(row: list[_Sentence | None], sentence: _Sentence) -> list[_Sentence]:
    """The sentence with its neighbours, when it shares anything with the question."""
    if sentence.score <= 0:
        return [sentence]
    lo, hi = max(0, sentence.position - 1), sentence.position + 2
    return [s for s in row[lo:hi] if s is not None]


def _greedy(
    passages: list[ContextPassage],
    table: list[list[_Sentence | None]],
    budget: int,
    count_tokens: CountTokens,
) -> set[_Sentence]:
    """Best sentences first (ties: higher-ranked passage, earlier sentence) while they fit."""
    candidates = [s for row in table for s in row if s is not None]
    candidates.sort(key=lambda s: (-s.score, s.passage, s.position))
    costs = {s: count_tokens(s.text) for s in candidates}
    headers = [count_tokens(format_passages([p.model_copy(update={"text": ""})])) for p in passages]
    chosen: set[_Sentence] = set()
    opened: set[int] = set()
    spent = 0
    for best in candidates:
        for option in (_window(table[best.passage], best), [best]):
            new = [s for s in option if s not in chosen]
            cost = sum(costs[s] + 1 for s in new)  # +1: the space or elision between them
            cost += 0 if best.passage in opened else headers[best.passage]
            if new and spent + cost <= budget:
                chosen.update(new)
                opened.add(best.passage)
                spent += cost
                break
    if not chosen and candidates:
        chosen.add(candidates[0])  # a budget below one sentence still gets the best one
    return chosen


def select_context(
    question: str, passages: list[ContextPassage], budget: int, count_tokens: CountTokens
) -> list[ContextPassage]:
    """The passages cut to the question's best sentences, their fenced text within ``budget``.

    ``budget`` counts the tokens of ``format_passages(result)`` with ``count_tokens``; 0 keeps
    the passages whole. Sentences are scored by the content units they share with the question;
    each chosen sentence brings its neighbours, repeated sentences are dropped, a passage with
    nothing chosen is left out and the others keep their index.
    """
    if budget <= 0 or not passages:
        return passages
    table = _sentences(question, passages)
    chosen = _greedy(passages, table, budget, count_tokens)
    result = _assemble(passages, table, chosen)
    # The estimate counts sentences one by one; trim the weakest until the real text fits.
    weakest = sorted(chosen, key=lambda s: (s.score, -s.passage, -s.position))
    while len(weakest) > 1 and count_tokens(format_passages(result)) > budget:
        chosen.discard(weakest.pop(0))
        result = _assemble(passages, table, chosen)
    return result
