"""Documents: list and delete (index first, then rows, then the stored file)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.errors import NotFoundError
from services.common.models import Chunk, Document, Job, KnowledgeBase
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
