"""Saved conversations: create, list, rename, delete, and append a question with its answer."""

from __future__ import annotations

import json
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.conversation_schemas import (
    ConversationCreate,
    ConversationDetail,
    ConversationMessagePublic,
    ConversationPublic,
    ConversationsPublic,
)
from services.common.errors import NotFoundError, ValidationFailedError
from services.common.models import Conversation, ConversationMessage, utcnow
from services.common.schemas import AnswerCheck, ChatMessage, ChatResponse, Citation, StepEvent
from services.gateway.auth import Principal, ensure_visible
from services.gateway.knowledge_bases.service import get_kb, name_of

logger = logging.getLogger(__name__)

TITLE_CHARS = 60
# Turns of a saved conversation given to the model as history (rewrite and answer).
HISTORY_MESSAGES = 6
UNTITLED = "New chat"


def title_from(question: str) -> str:
    """A title from the first question: its first line, shortened to TITLE_CHARS."""
    line = " ".join(question.strip().split("\n", 1)[0].split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def get_conversation(session: Session, conversation_id: int) -> Conversation:
    """One conversation (404 ``not_found``)."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFoundError(f"conversation {conversation_id} does not exist")
    return conv


def visible(session: Session, conversation_id: int, principal: Principal) -> Conversation:
    """One of the caller's own conversations (an admin's: any); any other 'does not exist'."""
    conv = get_conversation(session, conversation_id)
    missing = f"conversation {conversation_id} does not exist"
    ensure_visible(principal, conv.knowledge_base_id, missing)
    if not principal.owns(conv.user_id, conv.api_key_id):
        raise NotFoundError(missing)
    return conv


def create(session: Session, body: ConversationCreate, principal: Principal) -> ConversationPublic:
    """A new, empty conversation with a knowledge base."""
    kb = get_kb(session, body.knowledge_base, principal)
    conv = Conversation(
        knowledge_base_id=kb.id,
        title=title_from(body.title) or UNTITLED,
        user_id=principal.user_id,
        api_key_id=principal.key_id,
    )
    session.add(conv)
    session.commit()
    logger.info("created conversation %d in %s", conv.id, kb.name)
    return to_public(session, conv, kb.name)


def list_for_kb(session: Session, kb_name: str, principal: Principal) -> ConversationsPublic:
    """The caller's conversations with a knowledge base (an admin's: all), latest first."""
    kb = get_kb(session, kb_name, principal)
    query = (
        select(Conversation)
        .where(Conversation.knowledge_base_id == kb.id)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
    )
    if not principal.admin and principal.user_id is not None:
        query = query.where(Conversation.user_id == principal.user_id)
    elif not principal.admin:
        query = query.where(Conversation.api_key_id == principal.key_id)
    data = [to_public(session, conv, kb.name) for conv in session.scalars(query)]
    return ConversationsPublic(data=data, count=len(data))


def detail(session: Session, conversation_id: int, principal: Principal) -> ConversationDetail:
    """A conversation with every message."""
    conv = visible(session, conversation_id, principal)
    base = to_public(session, conv, name_of(session, conv.knowledge_base_id))
    messages = [message_public(row) for row in conv.messages]
    return ConversationDetail(**base.model_dump(), messages=messages)


def rename(
    session: Session, conversation_id: int, title: str, principal: Principal
) -> ConversationPublic:
    """Give a conversation a new title."""
    conv = visible(session, conversation_id, principal)
    if not title.strip():
        raise ValidationFailedError("a conversation title cannot be blank")
    conv.title = title.strip()[:200]
    session.commit()
    return to_public(session, conv, name_of(session, conv.knowledge_base_id))


def delete(session: Session, conversation_id: int, principal: Principal) -> None:
    """Delete a conversation with its messages (feedback on them is kept, unlinked)."""
    session.delete(visible(session, conversation_id, principal))
    session.commit()


def history(conv: Conversation) -> list[ChatMessage]:
    """The last turns, as chat messages for the model."""
    rows = conv.messages[-HISTORY_MESSAGES:]
    return [
        ChatMessage(role="assistant" if r.role == "assistant" else "user", content=r.content)
        for r in rows
    ]


def append_turns(
    sessions: sessionmaker[Session], conversation_id: int, question: str, reply: ChatResponse
) -> ChatResponse:
    """Store the question and its answer; the reply comes back with their ids."""
    with sessions() as session:
        conv = get_conversation(session, conversation_id)
        if conv.title == UNTITLED:
            conv.title = title_from(question) or UNTITLED
        answer = ConversationMessage(
            role="assistant",
            content=reply.answer,
            citations=json.dumps([c.model_dump() for c in reply.citations], ensure_ascii=False),
            query=reply.query,
            answer_check=reply.check.model_dump_json(),
            grounded=reply.grounded,
            steps=json.dumps([s.model_dump() for s in reply.steps], ensure_ascii=False),
        )
        conv.messages.extend([ConversationMessage(role="user", content=question), answer])
        conv.updated_at = utcnow()
        session.commit()
        return reply.model_copy(update={"conversation_id": conv.id, "message_id": answer.id})


def to_public(session: Session, conv: Conversation, kb_name: str) -> ConversationPublic:
    """A conversation without its messages."""
    count = session.scalar(
        select(func.count())
        .select_from(ConversationMessage)
        .where(ConversationMessage.conversation_id == conv.id)
    )
    return ConversationPublic(
        id=conv.id,
        knowledge_base=kb_name,
        title=conv.title,
        message_count=count or 0,
        created_at=conv.created_at,
        updated_at=conv.updated_at,
    )


def message_public(row: ConversationMessage) -> ConversationMessagePublic:
    """A stored message as the wire schema."""
    return ConversationMessagePublic(
        id=row.id,
        role="assistant" if row.role == "assistant" else "user",
        content=row.content,
        citations=[Citation.model_validate(c) for c in json.loads(row.citations or "[]")],
        query=row.query,
        check=AnswerCheck.model_validate_json(row.answer_check or "{}"),
        grounded=row.grounded,
        steps=[StepEvent.model_validate(s) for s in json.loads(row.steps or "[]")],
        created_at=row.created_at,
    )
