"""Reciprocal rank fusion: merge rankings whose scores are on different scales."""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Fuse ranked id lists by the sum of ``1 / (k + rank)`` (rank from 1), best first.

    Ties keep the id with the better single rank first, then the earlier ranking's id, so the
    order is deterministic.
    """
    if k < 0:
        raise ValueError(f"RRF k must be non-negative, got {k}")
    scores: dict[int, float] = {}
    best: dict[int, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
            best[chunk_id] = min(best.get(chunk_id, (rank, which)), (rank, which))
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]]))
