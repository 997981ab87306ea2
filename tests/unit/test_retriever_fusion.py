"""Reciprocal rank fusion."""

from __future__ import annotations

import pytest

from retriever.fusion import reciprocal_rank_fusion


def test_scores_are_sums_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([[10, 20, 30], [20, 40]], k=60))
    assert fused == pytest.approx({10: 1 / 61, 20: 1 / 62 + 1 / 61, 30: 1 / 63, 40: 1 / 62})


def test_an_id_in_both_rankings_beats_one_ranked_first_only_once() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [4, 2, 5]])
    assert [chunk_id for chunk_id, _ in fused][:1] == [2]


def test_order_is_best_first_with_deterministic_ties() -> None:
    fused = reciprocal_rank_fusion([[7, 8], [9, 6]])
    # 7 and 9 tie at 1/61, 8 and 6 at 1/62: the earlier ranking wins a tie.
    assert [chunk_id for chunk_id, _ in fused] == [7, 9, 8, 6]


def test_empty_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([[3, 1], []]) == [(3, 1 / 61), (1, 1 / 62)]


def test_negative_k_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        reciprocal_rank_fusion([[1]], k=-1)
