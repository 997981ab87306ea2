"""Saved conversations with a knowledge base."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.common.conversation_schemas import (
    ConversationCreate,
    ConversationDetail,
    ConversationPublic,
    ConversationsPublic,
    ConversationUpdate,
)
from services.gateway.auth import PrincipalDep
from services.gateway.conversations import service
from services.gateway.deps import SessionDep

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.post("", status_code=201, response_model=ConversationPublic)
def create_conversation(
    body: ConversationCreate, session: SessionDep, principal: PrincipalDep
) -> ConversationPublic:
    return service.create(session, body, principal)


@router.get("", response_model=ConversationsPublic)
def list_conversations(
    knowledge_base: str, session: SessionDep, principal: PrincipalDep
) -> ConversationsPublic:
    return service.list_for_kb(session, knowledge_base, principal)


@router.get("/{conversation_id}", response_model=ConversationDetail)
def get_conversation(
    conversation_id: int, session: SessionDep, principal: PrincipalDep
) -> ConversationDetail:
    return service.detail(session, conversation_id, principal)


@router.patch("/{conversation_id}", response_model=ConversationPublic)
def rename_conversation(
    conversation_id: int, body: ConversationUpdate, session: SessionDep, principal: PrincipalDep
) -> ConversationPublic:
    return service.rename(session, conversation_id, body.title, principal)


@router.delete("/{conversation_id}", status_code=204)
def delete_conversation(
    conversation_id: int, session: SessionDep, principal: PrincipalDep
) -> Response:
    service.delete(session, conversation_id, principal)
    return Response(status_code=204)
