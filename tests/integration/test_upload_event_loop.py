"""A large upload is typed, hashed and written off the event loop: other requests go on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common.models import KnowledgeBase
from services.common.settings import Settings
from services.gateway.app import create_app

pytestmark = pytest.mark.integration


def test_health_checks_are_answered_while_a_large_upload_is_stored(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'zhiku.db'}",
        retriever_url="http://127.0.0.1:9",  # never reached: nothing ingests here
        keyless=True,
        max_upload_mb=60,
    )
    app = create_app(settings)
    text = ("知库 " * 10 + "\n").encode() * 700_000  # 47 MB
    latencies: list[float] = []
    done = threading.Event()
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as client:
        with app.state.zhiku.sessions() as session:
            session.add(KnowledgeBase(name="big", embedding_model="m", embedding_dim=3))
            session.commit()

        def probe() -> None:
            while not done.is_set():
                start = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.01)

        prober = threading.Thread(target=probe)
        prober.start()
        start = time.perf_counter()
        files = [("files", ("big.txt", text, "text/plain"))]
        response = client.post("/api/v1/knowledge-bases/big/documents", files=files)
        upload_s = time.perf_counter() - start
        done.set()
        prober.join()
    assert response.status_code == 202 and len(response.json()["jobs"]) == 1
    assert upload_s > 0.5, "the upload was too quick to tell anything"
    # Stored on the event loop, a health check waited for the whole upload (2.2 s of 2.6 s).
    assert max(latencies) < upload_s / 2, (max(latencies), upload_s)
