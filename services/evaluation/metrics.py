"""Scores: ranking measures through ir-measures, answer F1/EM in the CMRC and SQuAD styles."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import ir_measures
import numpy as np
from ir_measures import RR, R, nDCG

# Report names -> ir-measures measures (RR@10 is MRR@10 once averaged over questions).
RANKING_MEASURES = {
    "recall@1": R @ 1,
    "recall@5": R @ 5,
    "recall@10": R @ 10,
    "mrr@10": RR @ 10,
    "ndcg@10": nDCG @ 10,
}
_NO_HIT = "__no_hit__"


def ranking_scores(
    gold: Mapping[str, str], ranked: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Mean recall@1/5/10, MRR@10 and nDCG@10 of ranked document lists, one gold per question."""
    if not gold:
        return {name: 0.0 for name in RANKING_MEASURES}
    qrels = [ir_measures.Qrel(qid, doc, 1) for qid, doc in gold.items()]
    run: list[ir_measures.ScoredDoc] = []
    for qid in gold:
        docs = list(ranked.get(qid, ())) or [_NO_HIT]  # a question with no hit still counts as 0
        run.extend(
            ir_measures.ScoredDoc(qid, doc, float(len(docs) - i)) for i, doc in enumerate(docs)
        )
    scores = ir_measures.calc_aggregate(list(RANKING_MEASURES.values()), qrels, run)
    return {name: float(scores.get(measure, 0.0)) for name, measure in RANKING_MEASURES.items()}


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of request times, in milliseconds."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    values = np.asarray(seconds) * 1000.0
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
    }


# --- answers: Chinese (CMRC 2018 evaluation style) -------------------------------------------

_ZH_PUNCT = set("，。、；：？！“”‘’「」『』（）《》〈〉【】—…·～,.;:?!\"'()[]{}<>-_/\\ \t\n")


def _zh_chars(text: str) -> list[str]:
    """Characters for CMRC scoring: CJK one by one, Latin words and numbers kept whole."""
    tokens: list[str] = []
    for piece in re.findall(r"[A-Za-z0-9]+|\S", text.lower()):
        if piece not in _ZH_PUNCT:
            tokens.append(piece)
    return tokens


def _lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def _f1(common: int, predicted: int, gold: int) -> float:
    """F1 of ``common`` units shared by a prediction and a gold answer of the given lengths."""
    if common == 0:
        return 0.0
    precision, recall = common / predicted, common / gold
    return 2 * precision * recall / (precision + recall)


def cmrc_f1(prediction: str, gold: str) -> float:
    """Character F1 over the longest common substring, as the CMRC 2018 script scores it."""
    pred, ref = _zh_chars(prediction), _zh_chars(gold)
    return _f1(_lcs_len(pred, ref), len(pred), len(ref))


def cmrc_em(prediction: str, gold: str) -> float:
    """1.0 when the answers are equal once punctuation and spaces are removed."""
    return float(_zh_chars(prediction) == _zh_chars(gold))


# --- answers: English (SQuAD v1.1 evaluation style) ------------------------------------------


def _squad_tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def squad_f1(prediction: str, gold: str) -> float:
    """Token F1 after SQuAD's normalisation (lowercase, no punctuation or articles)."""
    pred, ref = _squad_tokens(prediction), _squad_tokens(gold)
    return _f1(sum((Counter(pred) & Counter(ref)).values()), len(pred), len(ref))


def squad_em(prediction: str, gold: str) -> float:
    """1.0 when the normalised token sequences are equal."""
    return float(_squad_tokens(prediction) == _squad_tokens(gold))


def answer_scores(prediction: str, golds: Sequence[str], language: str) -> dict[str, float]:
    """F1 and EM against the best gold answer, and whether the reply contains a gold answer."""
    if not golds:
        return {"f1": 0.0, "em": 0.0, "contains": 0.0}
    f1, em = (squad_f1, squad_em) if language == "en" else (cmrc_f1, cmrc_em)
    if language == "en":
        norm_pred = " ".join(_squad_tokens(prediction))
        contains = any(" ".join(_squad_tokens(g)) in norm_pred for g in golds)
    else:
        joined = "".join(_zh_chars(prediction))
        contains = any("".join(_zh_chars(g)) in joined for g in golds)
    return {
        "f1": max(f1(prediction, g) for g in golds),
        "em": max(em(prediction, g) for g in golds),
        "contains": float(contains),
    }
