"""Knowledge bases."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.schemas import KnowledgeBaseCreate, KnowledgeBasePublic, KnowledgeBasesPublic
from services.gateway import kb_service
from services.gateway.deps import SessionDep, StateDep

router = APIRouter(prefix="/api/v1/knowledge-bases", tags=["knowledge-bases"])


@router.post("", status_code=201, response_model=KnowledgeBasePublic)
def create_knowledge_base(
    body: KnowledgeBaseCreate, state: StateDep, session: SessionDep
) -> KnowledgeBasePublic:
    kb = kb_service.create_kb(state, session, body)
    return kb_service.to_public(session, kb)


@router.get("", response_model=KnowledgeBasesPublic)
def list_knowledge_bases(session: SessionDep) -> KnowledgeBasesPublic:
    data = kb_service.list_kbs(session)
    return KnowledgeBasesPublic(data=data, count=len(data))


@router.get("/{kb}", response_model=KnowledgeBasePublic)
def get_knowledge_base(kb: str, session: SessionDep) -> KnowledgeBasePublic:
    return kb_service.to_public(session, kb_service.get_kb(session, kb))


@router.delete("/{kb}", status_code=204)
def delete_knowledge_base(kb: str, state: StateDep, session: SessionDep) -> Response:
    kb_service.delete_kb(state, session, kb_service.get_kb(session, kb))
    return Response(status_code=204)
