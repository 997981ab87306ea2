"""A retriever restarted alone with a corrupt index: the ingestion worker rebuilds it while it runs.

A real retriever process (uvicorn) on a data directory with an unreadable index, the real
database (SQLite) and the real default embedder on the worker's side.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingestion.pipeline import IngestionContext
from ingestion.rebuild import rebuild_flagged
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.embedding import create_embedder
from services.common.jobs import DocumentStatus
from services.common.models import Chunk, Document, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UVICORN = [sys.executable, "-m", "uvicorn", "retriever.app:create_app", "--factory"]
TEXTS = ["长城是中国古代修建的军事防御工程。", "The PP filter is replaced every six months."]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, retriever_url=f"http://127.0.0.1:{_free_port()}")
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    return settings


def _ready_kb_with_chunks(settings: Settings, model: str, dim: int) -> tuple[int, list[int]]:
    sessions = make_sessionmaker(make_engine(settings.sqlalchemy_url))
    with sessions.begin() as session:
        kb = KnowledgeBase(name="manuals", embedding_model=model, embedding_dim=dim)
        doc = Document(
            knowledge_base=kb,
            filename="manual.md",
            content_type="text/markdown",
            size_bytes=10,
            sha256="0" * 64,
            storage_path="manual.md",
            status=DocumentStatus.READY,
            chunk_count=len(TEXTS),
        )
        session.add(doc)
        session.flush()
        chunks = [
            Chunk(document_id=doc.id, knowledge_base_id=kb.id, position=i, text=text)
            for i, text in enumerate(TEXTS)
        ]
        session.add_all(chunks)
        session.flush()
        return kb.id, sorted(c.id for c in chunks)


@contextmanager
def retriever_process(settings: Settings) -> Iterator[RetrieverClient]:
    """The retriever started as its own process on ``settings.data_dir``."""
    port = settings.retriever_url.rsplit(":", 1)[1]
    env = {**os.environ, "ZHIKU_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*UVICORN, "--host", "127.0.0.1", "--port", port],
        cwd=REPO,
        env=env,
    )
    client = RetrieverClient(settings.retriever_url, timeout_s=30)
    try:
        deadline = time.monotonic() + 240
        while not client.ready():
            assert proc.poll() is None, "the retriever exited"
            assert time.monotonic() < deadline, "the retriever did not become ready"
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def test_a_retriever_restarted_with_a_corrupt_index_gets_it_rebuilt(settings: Settings) -> None:
    embedder = create_embedder(settings.embedding)
    kb_id, chunk_ids = _ready_kb_with_chunks(settings, embedder.name, embedder.dim)
    # What the retriever finds on its (re)start: an index it cannot read.
    (settings.index_dir / str(kb_id)).mkdir(parents=True)
    (settings.index_dir / str(kb_id) / "meta.json").write_text("{torn", encoding="utf-8")
    with retriever_process(settings) as client:
        assert client.rebuild_needed() == [kb_id]
        assert client.ids(kb_id) == []
        ctx = IngestionContext(
            settings=settings,
            sessions=make_sessionmaker(make_engine(settings.sqlalchemy_url)),
            embedder=embedder,
            retriever=client,
        )
        assert rebuild_flagged(ctx) == [kb_id]
        assert client.ids(kb_id) == chunk_ids
        assert client.rebuild_needed() == []
        assert rebuild_flagged(ctx) == []  # nothing left: the next check does nothing
