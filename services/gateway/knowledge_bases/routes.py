"""Knowledge bases."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.schemas import (
    ChunkPublic,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    KnowledgeBaseUpdate,
)
from services.gateway.auth import AdminDep, PrincipalDep
from services.gateway.deps import SessionDep, StateDep
from services.gateway.knowledge_bases import service

router = APIRouter(prefix="/api/v1/knowledge-bases", tags=["knowledge-bases"])


@router.post("", status_code=201, response_model=KnowledgeBasePublic)
def create_knowledge_base(
    body: KnowledgeBaseCreate, state: StateDep, session: SessionDep, _admin: AdminDep
) -> KnowledgeBasePublic:
    return service.create(state, session, body)


@router.get("", response_model=KnowledgeBasesPublic)
def list_knowledge_bases(session: SessionDep, principal: PrincipalDep) -> KnowledgeBasesPublic:
    data = service.list_kbs(session, principal)
    return KnowledgeBasesPublic(data=data, count=len(data))


@router.get("/{kb}", response_model=KnowledgeBasePublic)
def get_knowledge_base(
    kb: str, session: SessionDep, principal: PrincipalDep
) -> KnowledgeBasePublic:
    return service.get(session, kb, principal)


@router.delete("/{kb}", status_code=204)
def delete_knowledge_base(
    kb: str, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> Response:
    service.delete(state, session, kb, principal)
    return Response(status_code=204)


@router.patch("/{kb}", response_model=KnowledgeBasePublic)
def update_knowledge_base(
    kb: str, body: KnowledgeBaseUpdate, session: SessionDep, principal: PrincipalDep
) -> KnowledgeBasePublic:
    return service.update(session, kb, body, principal)


@router.get("/{kb}/chunks/{chunk_id}", response_model=ChunkPublic)
def get_chunk(kb: str, chunk_id: int, session: SessionDep, principal: PrincipalDep) -> ChunkPublic:
    return service.chunk(session, kb, chunk_id, principal)
