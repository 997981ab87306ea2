"""Every job and document transition, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery
from sqlalchemy.orm import Session

from services.common import jobs
from services.common.db import make_engine, make_sessionmaker
from services.common.jobs import DocumentStatus, JobStage
from services.common.models import Base, Document, Job, KnowledgeBase
from services.common.tasks import INGEST_TASK


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'zhiku.db'}")
    Base.metadata.create_all(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def _new_job(session: Session, sha: str = "0" * 64) -> tuple[Document, Job]:
    kb = session.query(KnowledgeBase).first()
    if kb is None:
        kb = KnowledgeBase(name="kb", embedding_model="m", embedding_dim=4)
        session.add(kb)
        session.flush()
    doc = Document(
        knowledge_base_id=kb.id, filename="a.txt", content_type="text/plain", size_bytes=1,
        sha256=sha, storage_path="/tmp/a.txt",
    )  # fmt: skip
    job = jobs.create_job(session, doc)
    session.commit()
    return doc, job


class FakeCelery:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.fail = fail

    def send_task(self, name: str, args: list[Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((name, args))


def test_a_new_document_is_pending_with_a_queued_job(session: Session) -> None:
    doc, job = _new_job(session)
    session.expire_all()
    assert (doc.status, doc.error) == (DocumentStatus.PENDING, None)
    assert (job.stage, job.progress, job.document_id) == (JobStage.QUEUED, 0.0, doc.id)
    assert (job.knowledge_base_id, job.filename) == (doc.knowledge_base_id, "a.txt")


def test_stages_then_done_make_the_document_ready(session: Session) -> None:
    doc, job = _new_job(session)
    jobs.start_stage(session, job.id, JobStage.EMBEDDING, 0.123456)
    session.commit()
    assert (job.stage, job.progress) == (JobStage.EMBEDDING, 0.1235)
    job.error = "a note left by a resumed run"
    jobs.finish_job(session, job.id, doc.id, 7)
    session.commit()
    session.expire_all()
    assert (job.stage, job.progress, job.error, job.error_type) == (JobStage.DONE, 1.0, None, None)
    assert (doc.status, doc.chunk_count, doc.error) == (DocumentStatus.READY, 7, None)


def test_a_stage_of_a_deleted_job_is_ignored(session: Session) -> None:
    jobs.start_stage(session, "no-such-job", JobStage.PARSING, 0.1)
    jobs.finish_job(session, "no-such-job", 12345, 3)
    session.commit()
    assert session.query(Job).count() == 0


def test_a_failed_job_fails_its_document_with_the_reason(session: Session) -> None:
    doc, job = _new_job(session)
    jobs.fail_job(session, job, "cannot parse", "parse_error")
    session.commit()
    session.expire_all()
    assert (job.stage, job.error, job.error_type) == (
        JobStage.FAILED,
        "cannot parse",
        "parse_error",
    )
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, "cannot parse")
    other_doc, other = _new_job(session, "1" * 64)
    jobs.fail_job(session, other, "worker stopped")
    assert (other.error_type, other_doc.status) == ("internal_error", DocumentStatus.FAILED)


def test_a_requeued_job_starts_over_and_its_document_is_pending_again(session: Session) -> None:
    doc, job = _new_job(session)
    jobs.fail_job(session, job, "cannot parse", "parse_error")
    session.commit()
    jobs.requeue_job(session, job)
    session.commit()
    session.expire_all()
    assert (job.stage, job.progress, job.error, job.error_type) == (JobStage.QUEUED, 0, None, None)
    assert (doc.status, doc.error) == (DocumentStatus.PENDING, None)
    jobs.start_stage(session, job.id, JobStage.INDEXING, 0.9)
    jobs.requeue_job(session, job, "resumed")
    assert (job.stage, job.progress, job.error) == (JobStage.QUEUED, 0.0, "resumed")


def test_pending_documents_of_failed_jobs_are_failed(session: Session) -> None:
    doc, job = _new_job(session)
    job.stage, job.error = JobStage.FAILED, "queue down"  # as an older gateway left it
    ready_doc, ready_job = _new_job(session, "1" * 64)
    jobs.finish_job(session, ready_job.id, ready_doc.id, 1)
    session.commit()
    assert jobs.fail_documents_of_failed_jobs(session) == 1
    session.commit()
    session.expire_all()
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, "queue down")
    assert ready_doc.status == DocumentStatus.READY


def test_enqueue_sends_the_job_id_to_the_ingest_task(session: Session) -> None:
    _, job = _new_job(session)
    celery = FakeCelery()
    jobs.enqueue_or_fail(cast(Celery, celery), session, job)
    assert celery.sent == [(INGEST_TASK, [job.id])]
    assert job.stage == JobStage.QUEUED


def test_a_queue_that_refuses_fails_the_job_at_once(session: Session) -> None:
    doc, job = _new_job(session)
    jobs.enqueue_or_fail(cast(Celery, FakeCelery(ConnectionError("refused"))), session, job)
    session.rollback()  # enqueue_or_fail committed the failure itself
    assert (job.stage, job.error_type) == (JobStage.FAILED, "not_ready")
    assert job.error == "the job queue is unavailable: refused"
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, job.error)
