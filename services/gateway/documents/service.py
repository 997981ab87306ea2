"""Documents and their ingestion jobs: upload, list, delete (index first), retry."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.errors import EmptyInputError, NotFoundError
from services.common.models import Chunk, Document, Job, KnowledgeBase
from services.common.schemas import (
    DocumentsPublic,
    DocumentStatus,
    JobPublic,
    JobsPublic,
    UploadAccepted,
)
from services.gateway.auth import Principal, ensure_visible
from services.gateway.documents.library import retry_job
from services.gateway.documents.pages import ensure_pdf, render_page_bounded
from services.gateway.documents.upload import accept_uploads
from services.gateway.documents.views import document_public, job_public
from services.gateway.knowledge_bases.service import get_kb, name_of
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def get_document(session: Session, kb: KnowledgeBase, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or doc.knowledge_base_id != kb.id:
        raise NotFoundError(f"document {document_id} is not in knowledge base '{kb.name}'")
    return doc


def list_documents(session: Session, kb: KnowledgeBase) -> list[Document]:
    return list(
        session.scalars(
            select(Document).where(Document.knowledge_base_id == kb.id).order_by(Document.id)
        )
    )


def list_jobs(session: Session, kb: KnowledgeBase) -> list[Job]:
    return list(
        session.scalars(
            select(Job).where(Job.knowledge_base_id == kb.id).order_by(Job.created_at.desc())
        )
    )


def delete_document(state: GatewayState, session: Session, doc: Document) -> None:
    """Vectors go first, so search never returns a chunk whose row is gone."""
    chunk_ids = list(session.scalars(select(Chunk.id).where(Chunk.document_id == doc.id)))
    state.retriever.delete(doc.knowledge_base_id, chunk_ids)
    path = Path(doc.storage_path)
    session.delete(doc)
    session.commit()
    path.unlink(missing_ok=True)
    logger.info("deleted document %d (%s) and %d chunks", doc.id, doc.filename, len(chunk_ids))


async def upload(
    state: GatewayState,
    session: Session,
    kb_name: str,
    files: list[UploadFile],
    principal: Principal,
) -> UploadAccepted:
    kb = get_kb(session, kb_name, principal, write=True)
    if not files:
        raise EmptyInputError("no files in the upload (use multipart parts named 'files')")
    return await accept_uploads(state, session, kb, files)


def documents_public(session: Session, kb_name: str, principal: Principal) -> DocumentsPublic:
    kb = get_kb(session, kb_name, principal)
    data = [document_public(d, kb.name) for d in list_documents(session, kb)]
    return DocumentsPublic(data=data, count=len(data))


def delete(
    state: GatewayState, session: Session, kb_name: str, document_id: int, principal: Principal
) -> None:
    kb = get_kb(session, kb_name, principal, write=True)
    delete_document(state, session, get_document(session, kb, document_id))


def jobs_public(session: Session, kb_name: str, principal: Principal) -> JobsPublic:
    kb = get_kb(session, kb_name, principal)
    data = [job_public(j, kb.name) for j in list_jobs(session, kb)]
    return JobsPublic(data=data, count=len(data))


def job(session: Session, job_id: str, principal: Principal) -> JobPublic:
    found = _visible_job(session, job_id, principal)
    return job_public(found, name_of(session, found.knowledge_base_id))


def retry(state: GatewayState, session: Session, job_id: str, principal: Principal) -> JobPublic:
    found = _visible_job(session, job_id, principal, write=True)
    kb_name = name_of(session, found.knowledge_base_id)
    return job_public(retry_job(state, session, found), kb_name)


def page_png(
    state: GatewayState,
    session: Session,
    document_id: int,
    page: int,
    principal: Principal,
    highlight: str | None,
) -> bytes:
    """A page of a ready PDF of a knowledge base the caller sees; any other is 'does not exist'."""
    doc = session.get(Document, document_id)
    missing = f"document {document_id} does not exist"
    if doc is None:
        raise NotFoundError(missing)
    ensure_visible(principal, doc.knowledge_base_id, missing)
    if doc.status != DocumentStatus.READY:
        raise NotFoundError(f"document {document_id} is not ready ({doc.status})")
    ensure_pdf(doc.content_type, doc.filename)
    return render_page_bounded(Path(doc.storage_path), page, highlight, state.settings.parsing)


def _visible_job(session: Session, job_id: str, principal: Principal, write: bool = False) -> Job:
    """A job of a knowledge base the caller sees; any other is 'does not exist'."""
    row = session.get(Job, job_id)
    missing = f"job {job_id} does not exist"
    if row is None:
        raise NotFoundError(missing)
    ensure_visible(principal, row.knowledge_base_id, missing, write=write)
    return row
