"""Knowledge bases: create, look up by name, delete with their index."""

from __future__ import annotations

import logging
import shutil

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.errors import ConflictError, NotFoundError
from services.common.models import Document, KnowledgeBase
from services.common.schemas import (
    ChunkPublic,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBaseUpdate,
)
from services.gateway.auth import Principal, ensure_visible
from services.gateway.documents import library
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


def get_kb(
    session: Session, name: str, principal: Principal, *, write: bool = False
) -> KnowledgeBase:
    """The knowledge base, if the caller may see it (404 otherwise) and change it when write."""
    missing = f"knowledge base '{name}' does not exist"
    kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))
    if kb is None:
        raise NotFoundError(missing)
    ensure_visible(principal, kb.id, missing, write=write)
    return kb


def name_of(session: Session, kb_id: int) -> str:
    """A knowledge base's name; empty once it is gone."""
    kb = session.get(KnowledgeBase, kb_id)
    return kb.name if kb else ""


def to_public(session: Session, kb: KnowledgeBase) -> KnowledgeBasePublic:
    count = session.scalar(
        select(func.count()).select_from(Document).where(Document.knowledge_base_id == kb.id)
    )
    return KnowledgeBasePublic.model_validate(kb).model_copy(update={"document_count": count or 0})


def list_kbs(session: Session, principal: Principal) -> list[KnowledgeBasePublic]:
    """The knowledge bases the caller may see."""
    kbs = session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.name)).all()
    return [to_public(session, kb) for kb in kbs if principal.sees(kb.id)]


def create_kb(state: GatewayState, session: Session, body: KnowledgeBaseCreate) -> KnowledgeBase:
    """Record the retriever's embedding model with the knowledge base, for life."""
    if session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.name == body.name)):
        raise ConflictError(f"knowledge base '{body.name}' already exists")
    model, dim = state.retriever.info()
    kb = KnowledgeBase(
        name=body.name, description=body.description, embedding_model=model, embedding_dim=dim
    )
    session.add(kb)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"knowledge base '{body.name}' already exists") from exc
    logger.info("created knowledge base %s (%s, dim %d)", kb.name, model, dim)
    return kb


def delete_kb(state: GatewayState, session: Session, kb: KnowledgeBase) -> None:
    """Drop the index first: a crash in between leaves rows to rebuild from, not orphan vectors."""
    state.retriever.drop(kb.id)
    session.delete(kb)
    session.commit()
    shutil.rmtree(state.settings.uploads_dir / str(kb.id), ignore_errors=True)
    logger.info("deleted knowledge base %s", kb.name)


def create(state: GatewayState, session: Session, body: KnowledgeBaseCreate) -> KnowledgeBasePublic:
    return to_public(session, create_kb(state, session, body))


def get(session: Session, name: str, principal: Principal) -> KnowledgeBasePublic:
    return to_public(session, get_kb(session, name, principal))


def delete(state: GatewayState, session: Session, name: str, principal: Principal) -> None:
    delete_kb(state, session, get_kb(session, name, principal, write=True))


def update(
    session: Session, name: str, body: KnowledgeBaseUpdate, principal: Principal
) -> KnowledgeBasePublic:
    kb = get_kb(session, name, principal, write=True)
    return to_public(session, library.update_kb(session, kb, body))


def chunk(session: Session, name: str, chunk_id: int, principal: Principal) -> ChunkPublic:
    return library.get_chunk(session, get_kb(session, name, principal), chunk_id)
