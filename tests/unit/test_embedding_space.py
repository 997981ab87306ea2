"""The one check that keeps vectors of two embedding models out of one knowledge base."""

from __future__ import annotations

import pytest

from services.common.embedding import EmbeddingSpace, require_same_embedding
from services.common.errors import EmbeddingMismatchError


def test_the_same_model_passes_and_an_unstated_dim_is_not_compared() -> None:
    require_same_embedding(EmbeddingSpace("kb 1", "m", 512), EmbeddingSpace("the request", "m"))
    require_same_embedding(EmbeddingSpace("kb 1", "m", 512), EmbeddingSpace("worker", "m", 512))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (EmbeddingSpace("this worker", "other", 512), r"kb 1 uses m \(dim 512\), .* other"),
        (EmbeddingSpace("this worker", "m", 384), r"but this worker has m \(dim 384\)"),
        (EmbeddingSpace("the search", "other"), r"but the search has other$"),
    ],
)
def test_another_model_or_dim_is_a_mismatch(given: EmbeddingSpace, message: str) -> None:
    with pytest.raises(EmbeddingMismatchError, match=message) as err:
        require_same_embedding(EmbeddingSpace("kb 1", "m", 512), given)
    assert err.value.error_type == "embedding_mismatch"
