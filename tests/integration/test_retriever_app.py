"""The retriever app end to end in-process, with the real default embedder (USE multilingual)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from retriever.app import create_app
from services.common.embedding import Embedder, create_embedder
from services.common.errors import UpstreamError
from services.common.retriever_client import RetrieverClient
from services.common.retriever_schemas import (
    EmbedderInfo,
    IndexAddResponse,
    IndexDeleteResponse,
    IndexStats,
    RetrieverReadiness,
    RetrieverSearchResponse,
)
from services.common.schemas import ErrorPublic
from services.common.settings import EmbeddingSettings, Settings
from services.launcher import free_port

pytestmark = pytest.mark.integration

KB = 1
TOKEN = "internal-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHUNKS = {  # chunk_id: (document_id, text)
    101: (1, "北京是中华人民共和国的首都，也是全国的政治和文化中心。"),
    102: (1, "机器学习是人工智能的一个分支，研究计算机如何从数据中学习规律。"),
    103: (2, "长城是中国古代修建的军事防御工程，全长两万多公里。"),
    104: (2, "大熊猫主要生活在四川的竹林里，以竹子为食。"),
    105: (3, "The Eiffel Tower is a wrought-iron lattice tower in Paris, France."),
    106: (3, "Photosynthesis is the process by which green plants convert sunlight into energy."),
    107: (4, "The Python programming language emphasizes code readability."),
    108: (4, "資料庫索引可以大幅加快查詢的速度。"),
}


def wait_ready(client: TestClient, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200:
            return
        assert response.status_code == 503
        assert ErrorPublic.model_validate(response.json()).error_type == "not_ready"
        time.sleep(0.2)
    pytest.fail("the retriever did not become ready")


@contextmanager
def served(settings: Settings) -> Iterator[TestClient]:
    """A retriever app started and ready; leaving the block stops it and frees its index folder."""
    with TestClient(create_app(settings), headers=AUTH) as test_client:
        assert test_client.get("/healthz").status_code == 200
        wait_ready(test_client)
        yield test_client


def own_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, internal_token=SecretStr(TOKEN))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder(EmbeddingSettings())


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("retriever-data"), internal_token=SecretStr(TOKEN)
    )


@pytest.fixture(scope="module")
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with served(settings) as test_client:
        response = test_client.post(f"/internal/indexes/{KB}/chunks", json=add_body(embedder))
        assert response.status_code == 200, response.text
        yield test_client


def add_body(embedder: Embedder, ids: list[int] | None = None) -> dict[str, Any]:
    ids = ids or list(CHUNKS)
    vectors = embedder.embed([CHUNKS[i][1] for i in ids])
    items = [
        {
            "chunk_id": chunk_id,
            "document_id": CHUNKS[chunk_id][0],
            "text": CHUNKS[chunk_id][1],
            "vector": base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii"),
        }
        for chunk_id, vector in zip(ids, vectors, strict=True)
    ]
    return {"embedding_model": embedder.name, "dim": embedder.dim, "items": items}


def search(
    client: TestClient, query: str, mode: str, model: str = "use-multilingual-v3", kb: int = KB
) -> RetrieverSearchResponse:
    body = {"kb_id": kb, "query": query, "top_k": 3, "mode": mode, "embedding_model": model}
    response = client.post("/internal/search", json=body)
    assert response.status_code == 200, response.text
    return RetrieverSearchResponse.model_validate(response.json())


def test_info_and_stats(client: TestClient, embedder: Embedder) -> None:
    info = EmbedderInfo.model_validate(client.get("/internal/info").json())
    assert (info.embedding_model, info.dim) == (embedder.name, embedder.dim)
    stats = IndexStats.model_validate(client.get(f"/internal/indexes/{KB}/stats").json())
    assert (stats.count, stats.embedding_model, stats.dim) == (len(CHUNKS), embedder.name, 512)


@pytest.mark.parametrize(
    ("query", "mode", "expected"),
    [
        ("中国的首都是哪个城市？", "dense", 101),
        ("how do plants make energy from sunlight", "dense", 106),
        ("數據庫查詢怎樣變快", "dense", 108),
        ("长城 军事 防御", "keyword", 103),
        ("Eiffel Tower", "keyword", 105),
        ("機器學習", "keyword", 102),
        ("资料库索引", "keyword", 108),
        ("熊猫吃什么", "hybrid", 104),
        ("Python code readability", "hybrid", 107),
        ("什么是机器学习", "hybrid", 102),
    ],
)
def test_search_ranks_the_right_chunk_first(
    client: TestClient, query: str, mode: str, expected: int
) -> None:
    hits = search(client, query, mode).hits
    assert hits[0].chunk_id == expected
    assert hits[0].document_id == CHUNKS[expected][0]
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_scores_carry_cosine_and_bm25(client: TestClient) -> None:
    dense = search(client, "中国的首都是哪个城市？", "dense").hits
    assert all(h.score == h.dense_score and h.keyword_score is None for h in dense)
    assert 0.2 < dense[0].score <= 1.0
    hybrid = search(client, "熊猫吃什么", "hybrid").hits
    # Every hybrid hit has a cosine, also those only the keyword side found.
    assert all(h.dense_score is not None for h in hybrid)
    assert hybrid[0].keyword_score is not None and hybrid[0].keyword_score > 0
    assert hybrid[0].score == pytest.approx(2 / 61)


def test_mismatched_embedding_model_is_409(client: TestClient, embedder: Embedder) -> None:
    body = {"kb_id": KB, "query": "长城", "top_k": 3, "embedding_model": "st:bge-small-zh"}
    response = client.post("/internal/search", json=body)
    assert response.status_code == 409
    error = ErrorPublic.model_validate(response.json())
    assert error.error_type == "embedding_mismatch"
    assert "st:bge-small-zh" in error.error and embedder.name in error.error
    add = add_body(embedder, [101]) | {"embedding_model": "st:bge-small-zh"}
    response = client.post(f"/internal/indexes/{KB}/chunks", json=add)
    assert response.status_code == 409
    assert response.json()["error_type"] == "embedding_mismatch"


def test_bad_requests_are_422(client: TestClient, embedder: Embedder) -> None:
    body = add_body(embedder, [101])
    body["items"][0]["vector"] = base64.b64encode(np.ones(3, "<f4").tobytes()).decode()
    response = client.post(f"/internal/indexes/{KB}/chunks", json=body)
    assert (response.status_code, response.json()["error_type"]) == (422, "validation_error")
    assert "expected dim 512" in response.json()["error"]
    response = client.post("/internal/search", json={"kb_id": KB, "query": ""})
    assert (response.status_code, response.json()["error_type"]) == (422, "validation_error")


def test_unknown_kb_has_no_hits(client: TestClient) -> None:
    assert search(client, "长城", "hybrid", kb=999).hits == []
    assert search(client, "长城", "keyword", kb=999).hits == []


def test_readding_is_idempotent(client: TestClient, embedder: Embedder) -> None:
    response = client.post(f"/internal/indexes/{KB}/chunks", json=add_body(embedder, [101, 102]))
    assert IndexAddResponse.model_validate(response.json()) == IndexAddResponse(
        added=2, total=len(CHUNKS)
    )


def test_index_survives_a_restart(tmp_path: Path, embedder: Embedder) -> None:
    # A restart is the first retriever gone, then a new one on its folder (one owner at a time).
    settings = own_settings(tmp_path)
    with served(settings) as first:
        assert first.post(f"/internal/indexes/{KB}/chunks", json=add_body(embedder)).is_success
    with served(settings) as second:
        assert search(second, "长城有多长", "hybrid").hits[0].chunk_id == 103


def test_delete_then_drop(client: TestClient, embedder: Embedder) -> None:
    kb = 2
    client.post(f"/internal/indexes/{kb}/chunks", json=add_body(embedder))
    response = client.post(f"/internal/indexes/{kb}/delete", json={"chunk_ids": [103, 104, 9]})
    deleted = IndexDeleteResponse.model_validate(response.json())
    assert deleted == IndexDeleteResponse(removed=2, total=len(CHUNKS) - 2)
    for mode in ("dense", "keyword", "hybrid"):
        hit_ids = {h.chunk_id for h in search(client, "长城 熊猫", mode, kb=kb).hits}
        assert not hit_ids & {103, 104}
    assert client.delete(f"/internal/indexes/{kb}").json() == {"dropped": True}
    assert client.delete(f"/internal/indexes/{kb}").status_code == 200
    assert client.get(f"/internal/indexes/{kb}/stats").json() == {
        "count": 0,
        "embedding_model": None,
        "dim": None,
    }
    assert search(client, "长城", "hybrid", kb=kb).hits == []


def test_the_internal_api_needs_the_shared_token(client: TestClient) -> None:
    # The same running app, called without the token the module's client sends.
    with TestClient(client.app) as stranger:
        assert stranger.get("/healthz").status_code == 200  # health checks stay open
        assert stranger.get("/readyz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for method, path in (
                ("GET", "/internal/info"),
                ("GET", f"/internal/indexes/{KB}/ids"),
                ("POST", "/internal/search"),
                ("DELETE", f"/internal/indexes/{KB}"),
            ):
                response = stranger.request(method, path, json={}, headers=headers)
                error = ErrorPublic.model_validate(response.json())
                assert (path, response.status_code, error.error_type) == (
                    path, 401, "unauthorized",
                )  # fmt: skip
    assert client.get(f"/internal/indexes/{KB}/stats").json()["count"] == len(CHUNKS)


def test_the_client_sends_the_token(client: TestClient) -> None:
    """RetrieverClient over a real socket: the right token works, a wrong one is our fault."""
    port = free_port()
    # The module's app, already started: served on a socket without running its lifespan again.
    config = uvicorn.Config(
        client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        right = RetrieverClient(url, token=SecretStr(TOKEN))
        assert set(right.ids(KB)) == set(CHUNKS)
        right.close()
        for token in (None, SecretStr("wrong")):
            wrong = RetrieverClient(url, token=token)
            with pytest.raises(UpstreamError, match="ZHIKU_INTERNAL_TOKEN"):
                wrong.ids(KB)
            wrong.close()
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_retriever_restarted_with_a_corrupt_index_reports_it_until_rebuilt(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = own_settings(tmp_path)
    with served(settings) as first:
        assert first.post(f"/internal/indexes/{KB}/chunks", json=add_body(embedder)).is_success
    corrupt = 7
    (settings.index_dir / str(corrupt)).mkdir()
    (settings.index_dir / str(corrupt) / "meta.json").write_text("{torn", encoding="utf-8")
    with served(settings) as restarted:
        # Found at start, before any search of that knowledge base; the others still answer.
        ready = RetrieverReadiness.model_validate(restarted.get("/readyz").json())
        assert (ready.status, ready.rebuild_needed) == ("degraded", [corrupt])
        assert search(restarted, "长城有多长", "hybrid").hits[0].chunk_id == 103
        response = restarted.post(f"/internal/indexes/{corrupt}/rebuilt")
        assert response.status_code == 200
        ready = RetrieverReadiness.model_validate(restarted.get("/readyz").json())
        assert (ready.status, ready.rebuild_needed) == ("ok", [])
