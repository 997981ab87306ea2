"""No job stays queued for ever: a lost message is sent again, and retry takes a stale job."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ingestion.reconcile import requeue_unpicked_jobs, start_requeuing
from services.common import jobs
from services.common.backend import create_backend
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.models import Document, Job, KnowledgeBase
from services.common.schemas import ErrorPublic, JobPublic
from services.common.settings import Settings
from services.common.tasks import create_celery
from services.gateway.app import create_app

pytestmark = pytest.mark.integration
Sessions = sessionmaker[Session]


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The embedded queue (a folder of message files) beside either database."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    return Settings(
        data_dir=tmp_path, database_url=url, queue_prefix=f"zhiku-{tmp_path.name[-12:]}"
    )


def _sessions(settings: Settings) -> Sessions:
    upgrade_database(settings.sqlalchemy_url)
    return make_sessionmaker(make_engine(settings.sqlalchemy_url))


def _celery(settings: Settings) -> Celery:
    return create_celery(create_backend(settings), "zhiku-test")


def _queued_job(sessions: Sessions, tmp_path: Path, name: str, age_s: float) -> str:
    """A job committed as queued ``age_s`` seconds ago whose message was never sent."""
    with sessions.begin() as session:
        kb = KnowledgeBase(name=f"{name}-{tmp_path.name}", embedding_model="m", embedding_dim=4)
        session.add(kb)
        session.flush()
        doc = Document(
            knowledge_base_id=kb.id, filename=f"{name}.txt", content_type="text/plain",
            size_bytes=1, sha256="0" * 64, storage_path=str(tmp_path / f"{name}.txt"),
        )  # fmt: skip
        job = jobs.create_job(session, doc)
        session.flush()
        job.updated_at = datetime.now(UTC) - timedelta(seconds=age_s)
        return job.id


def _messages(settings: Settings) -> list[str]:
    """The job ids whose ingestion messages wait in the embedded queue's folder."""
    found = []
    for path in sorted(settings.broker_dir.glob(f"*.{settings.queue_prefix}.ingest.msg")):
        message = json.loads(path.read_text())
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.extend(args)
    return found


def test_a_job_whose_message_was_lost_is_queued_again(settings: Settings, tmp_path: Path) -> None:
    # On PostgreSQL the database is shared with other tests: only these two jobs are looked at.
    sessions = _sessions(settings)
    lost = _queued_job(sessions, tmp_path, "lost", age_s=settings.ingest_requeue_after_s + 60)
    fresh = _queued_job(sessions, tmp_path, "fresh", age_s=1)  # its message may be on its way
    enqueue = partial(jobs.enqueue_ingest, _celery(settings))
    assert _messages(settings) == []
    sent = requeue_unpicked_jobs(sessions, settings.ingest_requeue_after_s, enqueue)
    assert lost in sent and fresh not in sent
    assert lost in _messages(settings) and fresh not in _messages(settings)
    with sessions() as session:
        job = session.get(Job, lost)
        assert job is not None and job.stage == "queued"
        assert not jobs.is_stale_queued(job, settings.ingest_requeue_after_s)  # clock restarted
    # Sent once per period, not on every check.
    assert lost not in requeue_unpicked_jobs(sessions, settings.ingest_requeue_after_s, enqueue)
    assert _messages(settings).count(lost) == 1


def test_a_running_worker_finds_lost_messages_by_itself(settings: Settings, tmp_path: Path) -> None:
    sessions = _sessions(settings)
    lost = _queued_job(sessions, tmp_path, "lost", age_s=5)
    stop = start_requeuing(sessions, 0.2, partial(jobs.enqueue_ingest, _celery(settings)))
    try:
        deadline = time.monotonic() + 30
        while lost not in _messages(settings):
            assert time.monotonic() < deadline, "the lost job was never queued again"
            time.sleep(0.1)
    finally:
        stop.set()


def test_retry_accepts_a_job_queued_for_too_long(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings)  # builds the schema
    sessions = _sessions(settings)
    stale = _queued_job(sessions, tmp_path, "stale", age_s=settings.ingest_requeue_after_s + 60)
    fresh = _queued_job(sessions, tmp_path, "fresh", age_s=1)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as client:
        refused = client.post(f"/api/v1/jobs/{fresh}/retry")
        assert refused.status_code == 409
        assert ErrorPublic.model_validate(refused.json()).error_type == "conflict"
        accepted = client.post(f"/api/v1/jobs/{stale}/retry")
        assert accepted.status_code == 202, accepted.text
        assert JobPublic.model_validate(accepted.json()).stage == "queued"
        assert client.post(f"/api/v1/jobs/{stale}/retry").status_code == 409  # queued just now
    assert stale in _messages(settings) and fresh not in _messages(settings)
