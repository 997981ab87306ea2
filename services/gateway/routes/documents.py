"""Documents and their ingestion jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile

from services.common.errors import EmptyInputError, NotFoundError
from services.common.models import Job, KnowledgeBase
from services.common.schemas import DocumentsPublic, JobPublic, JobsPublic, UploadAccepted
from services.gateway import document_service, kb_service
from services.gateway.deps import SessionDep, StateDep
from services.gateway.upload_service import accept_uploads
from services.gateway.views import document_public, job_public

router = APIRouter(prefix="/api/v1", tags=["documents"])


@router.post("/knowledge-bases/{kb}/documents", status_code=202, response_model=UploadAccepted)
async def upload_documents(
    kb: str, files: Annotated[list[UploadFile], File()], state: StateDep, session: SessionDep
) -> UploadAccepted:
    if not files:
        raise EmptyInputError("no files in the upload (use multipart parts named 'files')")
    return await accept_uploads(state, session, kb_service.get_kb(session, kb), files)


@router.get("/knowledge-bases/{kb}/documents", response_model=DocumentsPublic)
def list_documents(kb: str, session: SessionDep) -> DocumentsPublic:
    kb_row = kb_service.get_kb(session, kb)
    data = [
        document_public(d, kb_row.name) for d in document_service.list_documents(session, kb_row)
    ]
    return DocumentsPublic(data=data, count=len(data))


@router.delete("/knowledge-bases/{kb}/documents/{document_id}", status_code=204)
def delete_document(kb: str, document_id: int, state: StateDep, session: SessionDep) -> Response:
    kb_row = kb_service.get_kb(session, kb)
    document_service.delete_document(
        state, session, document_service.get_document(session, kb_row, document_id)
    )
    return Response(status_code=204)


@router.get("/knowledge-bases/{kb}/jobs", response_model=JobsPublic)
def list_jobs(kb: str, session: SessionDep) -> JobsPublic:
    kb_row = kb_service.get_kb(session, kb)
    data = [job_public(j, kb_row.name) for j in document_service.list_jobs(session, kb_row)]
    return JobsPublic(data=data, count=len(data))


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep) -> JobPublic:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} does not exist")
    kb = session.get(KnowledgeBase, job.knowledge_base_id)
    return job_public(job, kb.name if kb else "")
