"""A Chinese benchmark corpus built at run time from the SQuAD-layout datasets in shared/.

The datasets hold less distinct Chinese than a throughput benchmark wants, so each document is a
different deterministic shuffle of many paragraphs. The files are written to a temporary folder;
the datasets are read in place and never copied into the repository.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from bench.suite import REPO
from services.evaluation import Question, load_squad

DATASETS = REPO.parent / "shared" / "datasets"
CHINESE_SETS = ("cmrc2018_dev.json", "DRCD_dev.json", "xquad.zh.json")


@dataclass(frozen=True)
class Corpus:
    files: list[Path]
    paragraphs: int  # distinct paragraphs used
    questions: list[Question]  # the datasets' questions on those paragraphs

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def datasets_dir() -> Path:
    """shared/datasets beside the repository."""
    if not (DATASETS / CHINESE_SETS[0]).is_file():
        raise FileNotFoundError(f"{CHINESE_SETS[0]} not found under {DATASETS}")
    return DATASETS


def build_corpus(
    out: Path, total_bytes: int, doc_bytes: int = 400_000, pool: int | None = None, seed: int = 7
) -> Corpus:
    """Write documents of about ``doc_bytes`` UTF-8 bytes until ``total_bytes`` are reached.

    ``pool`` limits the distinct paragraphs (drawn deterministically); every document is then a
    different shuffle of that pool, cut at ``doc_bytes``.
    """
    sets = [load_squad(datasets_dir() / name) for name in CHINESE_SETS]
    paragraphs = [p for s in sets for p in s.paragraphs]
    rng = random.Random(seed)
    if pool is not None and pool < len(paragraphs):
        paragraphs = rng.sample(paragraphs, pool)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    written, used = 0, set()
    while written < total_bytes:
        order = paragraphs[:]
        random.Random(f"{seed}:{len(files)}").shuffle(order)
        parts, size = [], 0
        for para in order:
            if size >= min(doc_bytes, total_bytes - written):
                break
            parts.append(para.text.strip())
            used.add(para.filename)
            size += len(parts[-1].encode()) + 2
        path = out / f"doc{len(files):03d}.txt"
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        written += path.stat().st_size
        files.append(path)
    questions = [q for s in sets for q in s.questions if q.gold_document in used]
    return Corpus(files=files, paragraphs=len(used), questions=questions)
