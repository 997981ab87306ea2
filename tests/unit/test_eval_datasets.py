"""Loading SQuAD-layout sets, deterministic sampling and the Simplified variant of DRCD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.evaluation.datasets import (
    default_datasets_dir,
    load_squad,
    sample_set,
    set_name_for,
    simplified_variant,
)
from services.evaluation.report import retrieval_markdown
from services.evaluation.retrieval_eval import (
    QuestionResult,
    RetrievalConfig,
    ranked_documents,
    score_results,
)

REPO = Path(__file__).resolve().parents[2]
DATASETS = default_datasets_dir(REPO)


def _write_set(path: Path, with_ids: bool) -> Path:
    paragraphs = [
        {
            **({"id": f"P{i}"} if with_ids else {}),
            "context": f"第{i}段：臺灣的首府是臺北。" if i == 0 else f"Paragraph {i} text.",
            "qas": [
                {
                    "id": f"q{i}-{j}",
                    "question": "臺灣的首府是哪裡？" if i == 0 else f"What {j}?",
                    "answers": [
                        {"text": "臺北", "answer_start": 9},
                        {"text": "臺北", "answer_start": 9},
                    ],
                }
                for j in range(3)
            ],
        }
        for i in range(4)
    ]
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return path


def test_paragraphs_become_documents_and_questions_know_their_gold(tmp_path: Path) -> None:
    evalset = load_squad(_write_set(tmp_path / "DRCD_dev.json", with_ids=True))
    assert evalset.name == "drcd" and len(evalset.paragraphs) == 4 and len(evalset.questions) == 12
    assert evalset.paragraphs[0].filename == "drcd-P0.txt"
    assert evalset.questions[0].gold_document == "drcd-P0.txt"
    assert evalset.questions[0].answers == ("臺北",)  # duplicate gold answers collapse


def test_paragraphs_without_ids_are_numbered(tmp_path: Path) -> None:
    evalset = load_squad(_write_set(tmp_path / "my set.json", with_ids=False))
    assert evalset.name == "my-set"
    assert [p.paragraph_id for p in evalset.paragraphs] == ["a0p0", "a0p1", "a0p2", "a0p3"]


def test_sampling_is_deterministic_and_keeps_questions_with_their_paragraphs(
    tmp_path: Path,
) -> None:
    evalset = load_squad(_write_set(tmp_path / "x.json", with_ids=True))
    first = sample_set(evalset, 2, 4, seed=7)
    assert first == sample_set(evalset, 2, 4, seed=7)
    assert len(first.paragraphs) == 2 and len(first.questions) == 4
    names = {p.filename for p in first.paragraphs}
    assert all(q.gold_document in names for q in first.questions)
    assert sample_set(evalset, None, None, seed=7) == evalset


def test_traditional_questions_get_a_simplified_variant(tmp_path: Path) -> None:
    evalset = load_squad(_write_set(tmp_path / "DRCD_dev.json", with_ids=True))
    only_zh = sample_set(evalset, None, None, 0)
    variant = simplified_variant(
        type(only_zh)(only_zh.name, only_zh.paragraphs, only_zh.questions[:3])
    )
    assert variant is not None and variant.name == "drcd-t2s"
    assert variant.questions[0].text == "台湾的首府是哪里？"
    assert variant.questions[0].gold_document == "drcd-P0.txt"
    english = type(evalset)("en", evalset.paragraphs, evalset.questions[3:])
    assert simplified_variant(english) is None


@pytest.mark.skipif(not (DATASETS / "xquad.en.json").exists(), reason="no shared datasets")
def test_the_shared_sets_load_with_their_documented_sizes() -> None:
    sizes = {
        "cmrc2018_dev.json": (848, 3219),
        "xquad.en.json": (240, 1190),
        "DRCD_dev.json": (1000, 3524),
    }
    for name, (paragraphs, questions) in sizes.items():
        evalset = load_squad(DATASETS / name)
        assert (len(evalset.paragraphs), len(evalset.questions)) == (paragraphs, questions)
    assert load_squad(DATASETS / "xquad.en.json").language == "en"
    assert load_squad(DATASETS / "cmrc2018_dev.json").language == "zh"
    assert set_name_for(DATASETS / "xquad.zh.json") == "xquad-zh"


def test_scores_and_markdown_of_a_run(tmp_path: Path) -> None:
    evalset = load_squad(_write_set(tmp_path / "DRCD_dev.json", with_ids=True))
    assert ranked_documents(["a", "b", "a", "c"], {"c": "b"}) == ["a", "b"]
    results = [
        QuestionResult(q, [q.gold_document] if i % 2 == 0 else ["other"], 0.01)
        for i, q in enumerate(evalset.questions)
    ]
    run = score_results(results, [evalset], RetrievalConfig("keyword", rerank=False))
    assert run["label"] == "keyword" and run["overall"]["questions"] == 12
    assert run["overall"]["recall@1"] == pytest.approx(0.5)
    report = {
        "machine": "2 cores",
        "knowledge_base": "kb",
        "corpus": {"drcd": 4},
        "questions": {"drcd": 12},
        "questions_per_set": 500,
        "seed": 0,
        "ingestion": [],
        "runs": [run],
    }
    text = retrieval_markdown(report)
    assert "| keyword | 0.500 |" in text and "## drcd" in text
