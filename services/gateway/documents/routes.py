"""Documents and their ingestion jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from services.common.errors import EmptyInputError, NotFoundError
from services.common.models import Job, KnowledgeBase
from services.common.schemas import DocumentsPublic, JobPublic, JobsPublic, UploadAccepted
from services.gateway.auth import Principal, PrincipalDep, ensure_visible
from services.gateway.deps import SessionDep, StateDep
from services.gateway.documents import library as library_service
from services.gateway.documents import service as document_service
from services.gateway.documents.upload import accept_uploads
from services.gateway.documents.views import document_public, job_public
from services.gateway.knowledge_bases import service as kb_service

router = APIRouter(prefix="/api/v1", tags=["documents"])


@router.post("/knowledge-bases/{kb}/documents", status_code=202, response_model=UploadAccepted)
async def upload_documents(
    kb: str,
    files: Annotated[list[UploadFile], File()],
    state: StateDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> UploadAccepted:
    kb_row = kb_service.get_kb(session, kb, principal, write=True)
    if not files:
        raise EmptyInputError("no files in the upload (use multipart parts named 'files')")
    return await accept_uploads(state, session, kb_row, files)


@router.get("/knowledge-bases/{kb}/documents", response_model=DocumentsPublic)
def list_documents(kb: str, session: SessionDep, principal: PrincipalDep) -> DocumentsPublic:
    kb_row = kb_service.get_kb(session, kb, principal)
    data = [
        document_public(d, kb_row.name) for d in document_service.list_documents(session, kb_row)
    ]
    return DocumentsPublic(data=data, count=len(data))


@router.delete("/knowledge-bases/{kb}/documents/{document_id}", status_code=204)
def delete_document(
    kb: str, document_id: int, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> Response:
    kb_row = kb_service.get_kb(session, kb, principal, write=True)
    document_service.delete_document(
        state, session, document_service.get_document(session, kb_row, document_id)
    )
    return Response(status_code=204)


@router.get("/knowledge-bases/{kb}/jobs", response_model=JobsPublic)
def list_jobs(kb: str, session: SessionDep, principal: PrincipalDep) -> JobsPublic:
    kb_row = kb_service.get_kb(session, kb, principal)
    data = [job_public(j, kb_row.name) for j in document_service.list_jobs(session, kb_row)]
    return JobsPublic(data=data, count=len(data))


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    job = _visible_job(session, job_id, principal)
    kb = session.get(KnowledgeBase, job.knowledge_base_id)
    return job_public(job, kb.name if kb else "")


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=JobPublic)
def retry_job(
    job_id: str, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> JobPublic:
    job = _visible_job(session, job_id, principal, write=True)
    kb = session.get(KnowledgeBase, job.knowledge_base_id)
    return job_public(library_service.retry_job(state, session, job), kb.name if kb else "")


def _visible_job(
    session: SessionDep, job_id: str, principal: Principal, write: bool = False
) -> Job:
    """A job of a knowledge base the caller sees; any other is 'does not exist'."""
    job = session.get(Job, job_id)
    missing = f"job {job_id} does not exist"
    if job is None:
        raise NotFoundError(missing)
    ensure_visible(principal, job.knowledge_base_id, missing, write=write)
    return job
