"""The USE embedder split over workers gives the vectors one caller gets, in the texts' order."""

from __future__ import annotations

import numpy as np

from services.common.embedding import UseEmbedder

TEXTS = [f"第{i}号净水器的滤芯每{i + 2}个月更换一次。" for i in range(9)] + ["warranty period"]


def test_split_over_workers_matches_one_worker_row_for_row() -> None:
    one = UseEmbedder(threads=1, batch_size=64).embed(TEXTS)
    split = UseEmbedder(threads=2, batch_size=3).embed(TEXTS)  # five parts over two workers
    assert split.shape == (len(TEXTS), 512) and split.dtype == np.float32
    np.testing.assert_allclose(split, one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(split, axis=1), 1.0, atol=1e-5)


def test_no_texts_give_no_rows() -> None:
    assert UseEmbedder(threads=2).embed([]).shape == (0, 512)
