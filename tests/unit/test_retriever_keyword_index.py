"""The BM25 keyword index: Chinese segmentation, script folding, updates, persistence."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pytest

from retriever.keyword_index import KeywordIndex, term_counts, tokenize

K1, B = 1.2, 0.75

CORPUS = {
    1: "北京大学是中国著名的高等学府。",
    2: "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。",
    3: "长城是中国古代修建的军事防御工程。",
    4: "The Great Wall of China is an ancient fortification.",
}


@pytest.fixture
def index() -> KeywordIndex:
    idx = KeywordIndex()
    for chunk_id, text in CORPUS.items():
        idx.upsert(chunk_id, text)
    return idx


def test_tokenize_segments_chinese_in_search_mode() -> None:
    tokens = tokenize("北京大学的机器学习课程")
    # Search mode yields the long word and its parts, so either form of a query matches.
    assert {"北京", "大学", "北京大学", "机器", "学习", "课程"} <= set(tokens)


def test_tokenize_lowercases_and_drops_punctuation_and_spaces() -> None:
    tokens = tokenize("Hello, World！ 你好。 ... ——")
    assert tokens == ["hello", "world", "你好"]


def test_tokenize_folds_traditional_into_simplified() -> None:
    assert tokenize("機器學習與資料庫") == tokenize("机器学习与资料库")


def test_search_ranks_the_matching_chunk_first(index: KeywordIndex) -> None:
    hits = index.search("长城 军事", k=3)
    assert hits[0][0] == 3
    assert all(score > 0 for _, score in hits)


def test_traditional_query_finds_simplified_text(index: KeywordIndex) -> None:
    hits = index.search("機器學習", k=3)
    assert [chunk_id for chunk_id, _ in hits] == [2]


def test_english_query_is_case_insensitive(index: KeywordIndex) -> None:
    hits = index.search("GREAT WALL", k=3)
    assert hits[0][0] == 4


def test_search_without_matching_terms_is_empty(index: KeywordIndex) -> None:
    assert index.search("量子物理", k=5) == []
    assert KeywordIndex().search("长城", k=5) == []


def test_bm25_score_matches_the_formula() -> None:
    idx = KeywordIndex()
    idx.upsert(1, "apple banana")
    idx.upsert(2, "apple apple cherry date")
    idx.upsert(3, "cherry")
    # Tantivy's BM25 (k1=1.2, b=0.75). "apple": df=2 of N=3; avgdl = (2 + 4 + 1) / 3
    n_docs, df, avgdl = 3, 2, 7 / 3
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))

    def bm25(tf: int, doc_len: int) -> float:
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * doc_len / avgdl))

    hits = dict(idx.search("apple", k=10))
    assert hits == pytest.approx({1: bm25(1, 2), 2: bm25(2, 4)}, rel=1e-5)


def test_upsert_replaces_the_old_text(index: KeywordIndex) -> None:
    index.upsert(3, "熊猫生活在四川的竹林里。")
    assert index.count == len(CORPUS)
    assert 3 not in dict(index.search("长城", k=5))
    assert index.search("熊猫", k=5)[0][0] == 3


def test_remove_takes_the_chunk_out_of_every_posting(index: KeywordIndex) -> None:
    assert index.remove(3) is True
    assert index.remove(3) is False
    assert index.count == len(CORPUS) - 1
    assert 3 not in index.ids()
    assert 3 not in dict(index.search("长城 中国 军事", k=10))
    assert index.search("北京大学", k=1)[0][0] == 1


def test_removing_everything_leaves_an_empty_index(index: KeywordIndex) -> None:
    for chunk_id in CORPUS:
        index.remove(chunk_id)
    assert index.count == 0
    assert index.search("中国", k=5) == []


def test_commits_are_seen_by_a_reopened_index(index: KeywordIndex, tmp_path: Path) -> None:
    on_disk = KeywordIndex.create(tmp_path / "keywords")
    for chunk_id, text in CORPUS.items():
        on_disk.upsert(chunk_id, text)
    assert on_disk.remove(2) and index.remove(2)
    reopened = KeywordIndex.open(tmp_path / "keywords")
    assert reopened.ids() == index.ids() == {1, 3, 4}
    for query in ("长城", "機器學習", "great wall", "中国"):
        assert reopened.search(query, k=5) == index.search(query, k=5)


def test_open_refuses_a_directory_without_an_index(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no keyword index"):
        KeywordIndex.open(tmp_path)


def test_create_replaces_what_the_directory_held(tmp_path: Path) -> None:
    KeywordIndex.create(tmp_path / "k").upsert(1, "长城")
    assert KeywordIndex.create(tmp_path / "k").count == 0
    assert KeywordIndex.open(tmp_path / "k").ids() == set()


def reference_bm25(docs: dict[int, str], query: str, k: int) -> list[tuple[int, float]]:
    """BM25 as Tantivy scores it (k1=1.2, b=0.75), computed from scratch over ``docs``."""
    terms = {cid: Counter(tokenize(text)) for cid, text in docs.items()}
    doc_len = {cid: sum(t.values()) for cid, t in terms.items()}
    avg_len = sum(doc_len.values()) / len(docs)
    scores: dict[int, float] = {}
    for term, q_tf in Counter(tokenize(query)).items():
        posting = {cid: t[term] for cid, t in terms.items() if term in t}
        df = len(posting)
        if not df:
            continue
        idf = math.log(1.0 + (len(docs) - df + 0.5) / (df + 0.5))
        for cid, tf in posting.items():
            norm = K1 * (1.0 - B + B * doc_len[cid] / avg_len)
            scores[cid] = scores.get(cid, 0.0) + q_tf * idf * tf * (K1 + 1.0) / (tf + norm)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]


def test_updates_match_the_formula_and_a_fresh_index_scores_it() -> None:
    rng = random.Random(7)
    words = ["长城", "中国", "军事", "熊猫", "竹林", "北京", "大学", "学习", "wall", "great", "的"]
    queries = ("长城 中国", "熊猫的竹林", "great wall 的", "北京大学学习", "的")
    docs: dict[int, str] = {}
    idx = KeywordIndex()
    for step in range(400):
        chunk_id = rng.randrange(60)
        if rng.random() < 0.2 and chunk_id in docs:
            del docs[chunk_id]
            assert idx.remove(chunk_id)
        else:
            docs[chunk_id] = " ".join(rng.choices(words, k=rng.randint(1, 12)))
            idx.upsert(chunk_id, docs[chunk_id])
        if step % 40 == 39:
            # Until segments merge, Tantivy's statistics still count replaced chunks, so
            # through updates the same chunks match, with scores close to the formula's.
            for query in queries:
                assert {c for c, _ in idx.search(query, 100)} == {
                    c for c, _ in reference_bm25(docs, query, 100)
                }
    assert idx.count == len(docs) and idx.ids() == set(docs)
    fresh = KeywordIndex()
    fresh.upsert_many([(cid, term_counts(text)) for cid, text in docs.items()])
    for query in queries:
        for k in (1, 3, 10, 100):
            hits, expected = fresh.search(query, k), reference_bm25(docs, query, k)
            assert [s for _, s in hits] == pytest.approx([s for _, s in expected], rel=1e-5)
        assert dict(fresh.search(query, 100)) == pytest.approx(
            dict(reference_bm25(docs, query, 100)), rel=1e-5
        )
