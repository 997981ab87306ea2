"""Database rows as the public schemas."""

from __future__ import annotations

from services.common.models import Document, Job
from services.common.schemas import DocumentPublic, DocumentStatus, JobPublic, JobStage


def document_public(doc: Document, kb_name: str) -> DocumentPublic:
    return DocumentPublic(
        id=doc.id,
        knowledge_base=kb_name,
        filename=doc.filename,
        content_type=doc.content_type,
        size_bytes=doc.size_bytes,
        sha256=doc.sha256,
        status=DocumentStatus(doc.status),
        chunk_count=doc.chunk_count,
        error=doc.error,
        created_at=doc.created_at,
    )


def job_public(job: Job, kb_name: str) -> JobPublic:
    return JobPublic(
        id=job.id,
        document_id=job.document_id,
        knowledge_base=kb_name,
        filename=job.filename,
        stage=JobStage(job.stage),
        progress=min(max(job.progress, 0.0), 1.0),
        error=job.error,
        error_type=job.error_type,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
