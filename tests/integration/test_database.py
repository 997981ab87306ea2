"""The migrations and models on both databases zhiku supports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.models import Base, Chunk, Document, Job, KnowledgeBase

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'zhiku.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    yield url


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def _kb(session: Session, name: str = "kb") -> KnowledgeBase:
    kb = KnowledgeBase(name=name, description="", embedding_model="m", embedding_dim=4)
    session.add(kb)
    session.flush()
    return kb


def _doc(session: Session, kb: KnowledgeBase, sha: str = "a" * 64) -> Document:
    doc = Document(
        knowledge_base_id=kb.id,
        filename="f.txt",
        content_type="text/plain",
        size_bytes=1,
        sha256=sha,
        storage_path="/tmp/f",
        status="pending",
    )
    session.add(doc)
    session.flush()
    return doc


def test_migrations_create_every_model_table(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)  # idempotent
    tables = set(inspect(make_engine(database_url)).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_same_content_twice_in_one_kb_is_refused(session: Session) -> None:
    kb = _kb(session)
    _doc(session, kb)
    session.commit()
    with pytest.raises(IntegrityError):
        _doc(session, kb)
        session.commit()
    session.rollback()
    other = _kb(session, "other")
    _doc(session, other)  # the same content in another knowledge base is fine
    session.commit()


def test_deleting_a_kb_cascades_to_documents_chunks_and_jobs(session: Session) -> None:
    kb = _kb(session)
    doc = _doc(session, kb)
    session.add(Chunk(document_id=doc.id, knowledge_base_id=kb.id, position=0, text="块"))
    session.add(Job(id="j1", knowledge_base_id=kb.id, document_id=doc.id, filename="f.txt"))
    session.commit()
    session.delete(kb)
    session.commit()
    assert session.scalars(select(Chunk)).all() == []
    assert session.scalars(select(Document)).all() == []
    assert session.scalars(select(Job)).all() == []
