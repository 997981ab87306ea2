"""SQuAD-layout question sets: each paragraph is one document, each question knows its paragraph."""

from __future__ import annotations

import json
import logging
import os
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services.common.script import to_simplified

logger = logging.getLogger(__name__)

# Short, stable names for the sets shipped in shared/datasets; other files use their stem.
KNOWN_SETS = {
    "cmrc2018_dev": "cmrc",
    "xquad.zh": "xquad-zh",
    "xquad.en": "xquad-en",
    "DRCD_dev": "drcd",
}
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Paragraph:
    """One paragraph, ingested as the document ``filename``."""

    set_name: str
    paragraph_id: str
    text: str
    article: str = ""  # the article it belongs to (``a<n>``, numbered in file order)

    @property
    def filename(self) -> str:
        return f"{self.set_name}-{self.paragraph_id}.txt"


@dataclass(frozen=True)
class Question:
    """A question, its gold answers and the document (paragraph) it was asked on."""

    set_name: str
    question_id: str
    text: str
    answers: tuple[str, ...]
    gold_document: str


@dataclass(frozen=True)
class EvalSet:
    """The paragraphs and questions of one dataset file, and how many malformed rows it skipped."""

    name: str
    paragraphs: tuple[Paragraph, ...]
    questions: tuple[Question, ...]
    skipped: int = 0

    @property
    def language(self) -> str:
        """'en' when the questions are mostly ASCII letters, else 'zh'."""
        sample = "".join(q.text for q in self.questions[:50])
        letters = sum(ch.isascii() and ch.isalpha() for ch in sample)
        return "en" if sample and letters / len(sample) > 0.5 else "zh"


def set_name_for(path: Path) -> str:
    """The short name of a dataset file (``cmrc``, ``xquad-en``, ``drcd`` ...)."""
    stem = path.name.removesuffix(".json")
    return KNOWN_SETS.get(stem, _UNSAFE.sub("-", stem).strip("-").lower() or "set")


def load_squad(path: Path, name: str | None = None) -> EvalSet:
    """Read a SQuAD v1.1-layout file; paragraphs without an ``id`` are numbered.

    A malformed question (empty question, no answer, or an empty paragraph) is skipped with a
    warning and counted in ``skipped``: one bad row must not end a run of thousands.
    """
    set_name = name or set_name_for(path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    skipped = 0
    for article_no, article in enumerate(payload["data"]):
        for para_no, para in enumerate(article["paragraphs"]):
            raw_id = str(para.get("id") or f"a{article_no}p{para_no}")
            text = para.get("context") or ""
            paragraph = Paragraph(set_name, _UNSAFE.sub("_", raw_id), text, f"a{article_no}")
            kept = [q for q in (_question(paragraph, qa) for qa in para["qas"]) if q is not None]
            skipped += len(para["qas"]) - len(kept)
            if paragraph.text.strip():
                paragraphs.append(paragraph)
            questions += kept
    return EvalSet(set_name, tuple(paragraphs), tuple(questions), skipped)


def _question(paragraph: Paragraph, qa: dict[str, Any]) -> Question | None:
    """The row as a Question, or None (and a warning) when it cannot be asked and scored."""
    text = str(qa.get("question") or "").strip()
    answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a["text"].strip()))
    problem = None
    if not paragraph.text.strip():
        problem = "empty paragraph"
    elif not text:
        problem = "empty question"
    elif not answers:
        problem = "no answer"
    if problem is not None:
        logger.warning("%s: skipping question %s: %s", paragraph.set_name, qa.get("id"), problem)
        return None
    return Question(paragraph.set_name, str(qa["id"]), qa["question"], answers, paragraph.filename)


def sample_set(
    evalset: EvalSet, max_paragraphs: int | None, max_questions: int | None, seed: int
) -> EvalSet:
    """A deterministic subset: paragraphs first, then questions among those paragraphs."""
    rng = random.Random(f"{seed}:{evalset.name}")
    paragraphs = list(evalset.paragraphs)
    if max_paragraphs is not None and max_paragraphs < len(paragraphs):
        keep = set(rng.sample(range(len(paragraphs)), max_paragraphs))
        paragraphs = [p for i, p in enumerate(paragraphs) if i in keep]
    names = {p.filename for p in paragraphs}
    questions = [q for q in evalset.questions if q.gold_document in names]
    if max_questions is not None and max_questions < len(questions):
        keep = set(rng.sample(range(len(questions)), max_questions))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return EvalSet(evalset.name, tuple(paragraphs), tuple(questions), evalset.skipped)


def simplified_variant(evalset: EvalSet) -> EvalSet | None:
    """The set's questions converted to Simplified Chinese (same gold documents, no paragraphs).

    None when conversion changes no question, i.e. the set is not Traditional Chinese.
    """
    converted = [replace(q, text=to_simplified(q.text)) for q in evalset.questions]
    changed = sum(c.text != q.text for c, q in zip(converted, evalset.questions, strict=True))
    if changed < max(1, len(converted) // 4):
        return None
    renamed = [replace(q, set_name=f"{evalset.name}-t2s") for q in converted]
    return EvalSet(f"{evalset.name}-t2s", (), tuple(renamed))


def default_datasets_dir(repo_root: Path) -> Path:
    """``$ZHIKU_DATASETS_DIR`` or ``../shared/datasets`` beside the repository."""
    env = os.environ.get("ZHIKU_DATASETS_DIR")
    return Path(env) if env else repo_root.parent / "shared" / "datasets"
