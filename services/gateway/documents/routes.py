"""Documents and their ingestion jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Response, UploadFile

from services.common.schemas import DocumentsPublic, JobPublic, JobsPublic, UploadAccepted
from services.gateway.auth import PrincipalDep
from services.gateway.deps import SessionDep, StateDep
from services.gateway.documents import service

router = APIRouter(prefix="/api/v1", tags=["documents"])


@router.post("/knowledge-bases/{kb}/documents", status_code=202, response_model=UploadAccepted)
async def upload_documents(
    kb: str,
    files: Annotated[list[UploadFile], File()],
    state: StateDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> UploadAccepted:
    return await service.upload(state, session, kb, files, principal)


@router.get("/knowledge-bases/{kb}/documents", response_model=DocumentsPublic)
def list_documents(kb: str, session: SessionDep, principal: PrincipalDep) -> DocumentsPublic:
    return service.documents_public(session, kb, principal)


@router.delete("/knowledge-bases/{kb}/documents/{document_id}", status_code=204)
def delete_document(
    kb: str, document_id: int, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> Response:
    service.delete(state, session, kb, document_id, principal)
    return Response(status_code=204)


@router.get("/knowledge-bases/{kb}/jobs", response_model=JobsPublic)
def list_jobs(kb: str, session: SessionDep, principal: PrincipalDep) -> JobsPublic:
    return service.jobs_public(session, kb, principal)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    return service.job(session, job_id, principal)


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=JobPublic)
def retry_job(
    job_id: str, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> JobPublic:
    return service.retry(state, session, job_id, principal)


@router.get(
    "/documents/{document_id}/pages/{page}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def page_image(
    document_id: int,
    page: Annotated[int, Path(ge=1, le=100_000)],
    state: StateDep,
    session: SessionDep,
    principal: PrincipalDep,
    highlight: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """A PDF page as a PNG (longest side at most 1600 px), the quoted passage outlined.

    Rendered in a child bounded in time and memory: a page it cannot render is a 422.
    """
    png = service.page_png(state, session, document_id, page, principal, highlight)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=300"})
