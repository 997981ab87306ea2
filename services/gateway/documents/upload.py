"""Accept uploaded files: check each one, store it under a generated name, queue its ingestion."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

from fastapi import UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from services.common import jobs
from services.common.errors import PayloadTooLargeError, ZhikuError
from services.common.filetypes import (
    CONTENT_TYPES,
    ZIP_TYPES,
    check_zip_package,
    detect_type,
    display_name,
)
from services.common.models import Document, Job, KnowledgeBase
from services.common.schemas import UploadAccepted, UploadRejected
from services.gateway.documents.views import document_public, job_public
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


@dataclass
class _Accepted:
    document: Document
    job: Job


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(
            f"{upload.filename} is larger than the {limit / 2**20:.0f} MB upload limit"
        )
    return data


def _store(
    state: GatewayState, session: Session, kb: KnowledgeBase, name: str, data: bytes
) -> _Accepted | Document:
    """A new document and its job, or the existing document with the same content."""
    kind = detect_type(name, data)
    if kind in ZIP_TYPES:
        limits = state.settings.parsing
        check_zip_package(data, name, limits.max_unpacked_mb, limits.max_compression_ratio)
    sha = hashlib.sha256(data).hexdigest()
    existing = session.scalar(
        select(Document).where(Document.knowledge_base_id == kb.id, Document.sha256 == sha)
    )
    if existing is not None:
        return existing
    folder = state.settings.uploads_dir / str(kb.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.{kind}"
    path.write_bytes(data)
    doc = Document(
        knowledge_base_id=kb.id,
        filename=name[:255],
        content_type=CONTENT_TYPES[kind],
        size_bytes=len(data),
        sha256=sha,
        storage_path=str(path.resolve()),
    )
    job = jobs.create_job(session, doc)
    session.commit()
    return _Accepted(doc, job)


def enqueue_job(state: GatewayState, session: Session, job: Job) -> None:
    """Queue a job's ingestion; a queue that cannot take it fails the job with the reason."""
    jobs.enqueue_or_fail(state.celery, session, job)


async def accept_uploads(
    state: GatewayState, session: Session, kb: KnowledgeBase, uploads: list[UploadFile]
) -> UploadAccepted:
    """Every file is judged on its own: one bad file never stops the others."""
    limit = int(state.settings.max_upload_mb * 2**20)
    result = UploadAccepted(jobs=[], rejected=[])
    for upload in uploads:
        name = display_name(upload.filename)
        try:
            data = await _read_limited(upload, limit)
            # Typing, the Word checks, hashing and writing take seconds on a large file: in a
            # thread, so that the event loop goes on serving every other request meanwhile.
            stored = await run_in_threadpool(_store, state, session, kb, name, data)
        except ZhikuError as exc:
            result.rejected.append(
                UploadRejected(filename=name, error=exc.message, error_type=exc.error_type)
            )
            continue
        if isinstance(stored, Document):
            result.duplicates.append(document_public(stored, kb.name))
            continue
        await run_in_threadpool(enqueue_job, state, session, stored.job)
        result.jobs.append(job_public(stored.job, kb.name))
        logger.info("queued %s as document %d (job %s)", name, stored.document.id, stored.job.id)
    return result
