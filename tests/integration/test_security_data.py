"""No knowledge base's text reaches another's search: resolved hits, ids, deleted documents."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ingestion.pipeline import DELETED, IngestionContext, ingest_job
from retriever.app import create_app
from services.common.chunks import ScoredChunk
from services.common.db import MIGRATIONS_DIR, make_engine, make_sessionmaker, upgrade_database
from services.common.embedding import create_embedder
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.retriever_client import RetrieverClient
from services.common.settings import ChunkingSettings, EmbeddingSettings, Settings
from services.gateway.search.service import _resolve

pytestmark = pytest.mark.integration
Sessions = sessionmaker[Session]


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sessions]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _kb(session: Session, name: str) -> KnowledgeBase:
    kb = KnowledgeBase(name=name, embedding_model="use-multilingual-v3", embedding_dim=512)
    session.add(kb)
    session.flush()
    return kb


def _doc(session: Session, kb: KnowledgeBase, path: Path, status: str = "ready") -> Document:
    doc = Document(
        knowledge_base_id=kb.id, filename=path.name, content_type="text/plain",
        size_bytes=1, sha256=f"{kb.id:064d}", storage_path=str(path), status=status,
    )  # fmt: skip
    session.add(doc)
    session.flush()
    return doc


def _chunk(session: Session, doc: Document, text: str) -> int:
    chunk = Chunk(
        document_id=doc.id, knowledge_base_id=doc.knowledge_base_id, position=0, text=text
    )
    session.add(chunk)
    session.flush()
    return chunk.id


def test_a_hit_naming_another_knowledge_bases_chunk_is_dropped(
    sessions: Sessions, tmp_path: Path
) -> None:
    with sessions.begin() as session:
        mine, theirs = (
            _kb(session, f"mine-{tmp_path.name}"),
            _kb(session, f"theirs-{tmp_path.name}"),
        )
        my_chunk = _chunk(session, _doc(session, mine, tmp_path / "a.txt"), "我的公开内容")
        secret = _chunk(session, _doc(session, theirs, tmp_path / "b.txt"), "别人的机密")
    # The retriever of `mine` answers with a stale vector whose id now names `theirs`' chunk.
    hits = [
        ScoredChunk(chunk_id=secret, document_id=1, score=0.9),
        ScoredChunk(chunk_id=my_chunk, document_id=1, score=0.5),
    ]
    with sessions() as session:
        resolved = _resolve(session, mine, hits)
    assert [hit.chunk_id for hit in resolved] == [my_chunk]
    assert all("机密" not in hit.text for hit in resolved)


def test_sqlite_never_hands_a_deleted_id_out_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    upgrade_database(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as session:
        kb = _kb(session, "kb")
        doc = _doc(session, kb, tmp_path / "a.txt")
        last_chunk = _chunk(session, doc, "一")
        last_doc, last_kb = doc.id, kb.id
    with sessions.begin() as session:  # the newest rows go: their ids are the largest
        session.execute(delete(KnowledgeBase).where(KnowledgeBase.id == last_kb))
    with sessions.begin() as session:
        kb = _kb(session, "other")
        doc = _doc(session, kb, tmp_path / "b.txt")
        assert _chunk(session, doc, "二") > last_chunk
        assert doc.id > last_doc and kb.id > last_kb


def test_an_existing_sqlite_database_keeps_its_rows_and_stops_reusing_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    before = Config()
    before.set_main_option("script_location", str(MIGRATIONS_DIR))
    before.set_main_option("sqlalchemy.url", url)
    command.upgrade(before, "0003")  # a deployment from before ids were kept unique
    sessions = make_sessionmaker(make_engine(url))
    with sessions.begin() as session:
        kb = _kb(session, "kb")
        doc = _doc(session, kb, tmp_path / "a.txt")
        kept, dropped = _chunk(session, doc, "留下"), _chunk(session, doc, "删掉")
        session.add(Job(id="j1", knowledge_base_id=kb.id, document_id=doc.id, filename="a"))
    with sessions.begin() as session:
        session.execute(delete(Chunk).where(Chunk.id == dropped))
    upgrade_database(url)
    with sessions.begin() as session:
        assert [c.text for c in session.scalars(select(Chunk))] == ["留下"]
        assert session.get(Job, "j1") is not None
        new_doc = session.scalars(select(Document)).one()
        # SQLite kept no record of ids deleted before the upgrade; from here on, none is reused.
        assert _chunk(session, new_doc, "新") > kept
    with sessions.begin() as session:  # foreign keys still cascade after the tables were rebuilt
        session.execute(delete(KnowledgeBase))
    with sessions() as session:
        assert session.scalars(select(Chunk)).all() == session.scalars(select(Job)).all() == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RetrieverClient]:
    """The real retriever app over HTTP on a free port, as the ingestion worker reaches it."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("retriever"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = RetrieverClient(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while not client.ready():
        assert time.monotonic() < deadline, "the retriever did not become ready"
        time.sleep(0.2)
    yield client
    client.close()
    server.should_exit = True
    thread.join(timeout=10)


def test_a_document_deleted_during_ingestion_leaves_no_vectors(
    tmp_path: Path, retriever: RetrieverClient
) -> None:
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    upgrade_database(url)
    sessions = make_sessionmaker(make_engine(url))
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(f"第{i}段：净水器的滤芯需要定期更换。" for i in range(2000)))
    with sessions.begin() as session:
        kb = _kb(session, "kb")
        doc = _doc(session, kb, path, status="pending")
        session.add(Job(id="job-1", knowledge_base_id=kb.id, document_id=doc.id, filename="a"))
        kb_id, doc_id = kb.id, doc.id
    ctx = IngestionContext(
        settings=Settings(data_dir=tmp_path, chunking=ChunkingSettings(size=60, overlap=0),
                          embedding=EmbeddingSettings(batch_size=8)),
        sessions=sessions, embedder=create_embedder(EmbeddingSettings()), retriever=retriever,
    )  # fmt: skip
    worker = threading.Thread(target=ingest_job, args=(ctx, "job-1"))
    worker.start()
    _delete_once_vectors_arrive(sessions, retriever, kb_id, doc_id)
    worker.join(timeout=300)
    assert not worker.is_alive()
    with sessions() as session:
        job = session.get(Job, "job-1")
        assert session.scalars(select(Chunk)).all() == []
    assert retriever.ids(kb_id) == []  # none added after the delete, none left from before
    assert job is not None and (job.stage, job.error, job.error_type) == (
        "failed", DELETED, "not_found")  # fmt: skip


def _delete_once_vectors_arrive(
    sessions: Sessions, retriever: RetrieverClient, kb_id: int, doc_id: int
) -> None:
    """What the gateway does to delete a document (vectors first, then the row), mid-ingestion."""
    deadline = time.monotonic() + 240
    while not retriever.ids(kb_id):
        assert time.monotonic() < deadline, "no vector was ever added"
        time.sleep(0.01)
    with sessions.begin() as session:
        job = session.get(Job, "job-1")
        assert job is not None and job.stage != "done", "ingestion finished before the delete"
        chunk_ids = list(session.scalars(select(Chunk.id).where(Chunk.document_id == doc_id)))
        retriever.delete(kb_id, chunk_ids)
        session.execute(delete(Document).where(Document.id == doc_id))
