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
from services.common.models import Conversation, KnowledgeBase
from services.gateway.auth import Principal, PrincipalDep, ensure_visible
from services.gateway.conversations import service as conversation_service
from services.gateway.deps import SessionDep
from services.gateway.knowledge_bases import service as kb_service

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])


@router.post("", status_code=201, response_model=ConversationPublic)
def create_conversation(
    body: ConversationCreate, session: SessionDep, principal: PrincipalDep
) -> ConversationPublic:
    kb = kb_service.get_kb(session, body.knowledge_base, principal)
    conv = conversation_service.create(session, kb, body.title)
    return conversation_service.to_public(session, conv, kb.name)


@router.get("", response_model=ConversationsPublic)
def list_conversations(
    knowledge_base: str, session: SessionDep, principal: PrincipalDep
) -> ConversationsPublic:
    kb = kb_service.get_kb(session, knowledge_base, principal)
    data = [
        conversation_service.to_public(session, conv, kb.name)
        for conv in conversation_service.list_for_kb(session, kb)
    ]
    return ConversationsPublic(data=data, count=len(data))


@router.get("/{conversation_id}", response_model=ConversationDetail)
def get_conversation(
    conversation_id: int, session: SessionDep, principal: PrincipalDep
) -> ConversationDetail:
    conv = _visible(session, conversation_id, principal)
    return conversation_service.to_detail(session, conv, _kb_name(session, conv.knowledge_base_id))


@router.patch("/{conversation_id}", response_model=ConversationPublic)
def rename_conversation(
    conversation_id: int, body: ConversationUpdate, session: SessionDep, principal: PrincipalDep
) -> ConversationPublic:
    conv = _visible(session, conversation_id, principal)
    conversation_service.rename(session, conv, body.title)
    return conversation_service.to_public(session, conv, _kb_name(session, conv.knowledge_base_id))


@router.delete("/{conversation_id}", status_code=204)
def delete_conversation(
    conversation_id: int, session: SessionDep, principal: PrincipalDep
) -> Response:
    conversation_service.delete(session, _visible(session, conversation_id, principal))
    return Response(status_code=204)


def _kb_name(session: SessionDep, kb_id: int) -> str:
    kb = session.get(KnowledgeBase, kb_id)
    return kb.name if kb else ""


def _visible(session: SessionDep, conversation_id: int, principal: Principal) -> Conversation:
    """A conversation with a knowledge base the caller sees; any other 'does not exist'."""
    conv = conversation_service.get_conversation(session, conversation_id)
    missing = f"conversation {conversation_id} does not exist"
    ensure_visible(principal, conv.knowledge_base_id, missing)
    return conv
