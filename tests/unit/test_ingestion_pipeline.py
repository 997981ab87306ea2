"""One document through the pipeline with SQLite, a fake embedder and a fake retriever."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingestion.pipeline import IngestionContext, ingest_job
from services.common.chunks import ChunkIn
from services.common.db import make_engine, make_sessionmaker
from services.common.errors import NotReadyError
from services.common.models import Base, Chunk, Document, Job, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import ChunkingSettings, EmbeddingSettings, Settings


class FakeEmbedder:
    name = "fake"
    dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        self.calls += 1
        return np.ones((len(texts), self.dim), dtype=np.float32) / 2


class FakeRetriever:
    def __init__(self, fail: Exception | None = None) -> None:
        self.items: list[ChunkIn] = []
        self.adds = 0
        self.fail = fail

    def add(self, kb_id: int, model: str, dim: int, items: list[ChunkIn]) -> int:
        if self.fail is not None:
            raise self.fail
        self.adds += 1
        self.items.extend(items)
        return len(self.items)

    def delete(self, kb_id: int, chunk_ids: list[int]) -> None:
        self.items = [it for it in self.items if it.chunk_id not in set(chunk_ids)]


def _context(tmp_path: Path, retriever: FakeRetriever) -> IngestionContext:
    engine = make_engine(f"sqlite:///{tmp_path / 'zhiku.db'}")
    Base.metadata.create_all(engine)
    settings = Settings(
        data_dir=tmp_path,
        chunking=ChunkingSettings(size=100, overlap=10),
        embedding=EmbeddingSettings(batch_size=4),
    )
    return IngestionContext(
        settings=settings,
        sessions=make_sessionmaker(engine),
        embedder=FakeEmbedder(),
        retriever=cast(RetrieverClient, retriever),
    )


def _queue_document(sessions: sessionmaker[Session], path: Path) -> str:
    with sessions.begin() as session:
        kb = KnowledgeBase(name="kb", embedding_model="fake", embedding_dim=4)
        session.add(kb)
        session.flush()
        doc = Document(
            knowledge_base_id=kb.id, filename=path.name, content_type="text/plain",
            size_bytes=path.stat().st_size, sha256="0" * 64, storage_path=str(path),
        )  # fmt: skip
        session.add(doc)
        session.flush()
        session.add(Job(id="job-1", knowledge_base_id=kb.id, document_id=doc.id, filename="a"))
    return "job-1"


def _document(tmp_path: Path) -> Path:
    path = tmp_path / "doc.txt"
    paragraphs = [f"第{i}段：净水器的滤芯需要定期更换，出水量和水压有关。" * 3 for i in range(60)]
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


def test_every_row_is_indexed_once_with_its_document(tmp_path: Path) -> None:
    retriever = FakeRetriever()
    ctx = _context(tmp_path, retriever)
    ingest_job(ctx, _queue_document(ctx.sessions, _document(tmp_path)))
    with ctx.sessions() as session:
        job = session.get(Job, "job-1")
        doc = session.scalars(select(Document)).one()
        rows = list(session.scalars(select(Chunk).order_by(Chunk.position)))
    assert job is not None and (job.stage, job.progress) == ("done", 1.0)
    assert doc.status == "ready" and doc.chunk_count == len(rows) == 60
    assert [it.chunk_id for it in retriever.items] == [row.id for row in rows]
    assert [it.text for it in retriever.items] == [row.text for row in rows]
    assert {it.document_id for it in retriever.items} == {doc.id}
    # Embedded in batches of batch_size (4); indexed in adds of at least that many.
    assert cast(FakeEmbedder, ctx.embedder).calls == 15
    assert 1 <= retriever.adds <= 15


def test_a_retriever_failure_fails_the_job_with_its_reason(tmp_path: Path) -> None:
    ctx = _context(tmp_path, FakeRetriever(fail=NotReadyError("retriever unreachable")))
    ingest_job(ctx, _queue_document(ctx.sessions, _document(tmp_path)))
    with ctx.sessions() as session:
        job = session.get(Job, "job-1")
        doc = session.scalars(select(Document)).one()
    assert job is not None and (job.stage, job.error_type) == ("failed", "not_ready")
    assert doc.status == "failed" and "retriever unreachable" in (doc.error or "")


def test_running_a_job_again_leaves_no_duplicates(tmp_path: Path) -> None:
    retriever = FakeRetriever()
    ctx = _context(tmp_path, retriever)
    job_id = _queue_document(ctx.sessions, _document(tmp_path))
    for _ in range(2):
        with ctx.sessions.begin() as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.stage = "embedding"  # as a redelivered message after a crash finds it
        ingest_job(ctx, job_id)
    with ctx.sessions() as session:
        ids = list(session.scalars(select(Chunk.id)))
    assert sorted(it.chunk_id for it in retriever.items) == sorted(ids) and len(ids) == 60
