"""Thumbs up or down on answers: one rating per stored answer, exportable for review."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.conversation_schemas import FeedbackCreate, FeedbackPublic
from services.common.errors import NotFoundError
from services.common.models import (
    Conversation,
    ConversationMessage,
    Feedback,
    KnowledgeBase,
    utcnow,
)
from services.gateway.auth import Principal, ensure_visible
from services.gateway.knowledge_bases.service import get_kb

logger = logging.getLogger(__name__)

CSV_FIELDS = list(FeedbackPublic.model_fields)
# A cell starting with one of these is a formula to a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _rated_answer(session: Session, message_id: int) -> ConversationMessage:
    answer = session.get(ConversationMessage, message_id)
    if answer is None or answer.role != "assistant":
        raise NotFoundError(f"answer {message_id} does not exist")
    return answer


def _fill_from_message(session: Session, row: Feedback, answer: ConversationMessage) -> None:
    """Copy the rated answer, its question and knowledge base, so an export stands alone."""
    question = session.scalar(
        select(ConversationMessage.content)
        .where(
            ConversationMessage.conversation_id == answer.conversation_id,
            ConversationMessage.id < answer.id,
            ConversationMessage.role == "user",
        )
        .order_by(ConversationMessage.id.desc())
        .limit(1)
    )
    kb_name = session.scalar(
        select(KnowledgeBase.name)
        .join(Conversation, Conversation.knowledge_base_id == KnowledgeBase.id)
        .where(Conversation.id == answer.conversation_id)
    )
    row.answer, row.question = answer.content, question or row.question
    row.knowledge_base = kb_name or row.knowledge_base


def record(session: Session, body: FeedbackCreate) -> Feedback:
    """Store a rating; rating the same answer again replaces the earlier one."""
    # Checked before anything is added: a missing answer is a 404, never a foreign-key error.
    answer = _rated_answer(session, body.message_id) if body.message_id is not None else None
    row = None
    if answer is not None:
        row = session.scalar(select(Feedback).where(Feedback.message_id == answer.id))
    if row is None:
        row = Feedback(message_id=body.message_id)
        session.add(row)
    row.rating, row.comment, row.created_at = body.rating, body.comment.strip(), utcnow()
    row.knowledge_base, row.question, row.answer = body.knowledge_base, body.question, body.answer
    if answer is not None:
        _fill_from_message(session, row, answer)
    session.commit()
    logger.info("feedback %+d on answer %s", row.rating, row.message_id)
    return row


def create(session: Session, body: FeedbackCreate, principal: Principal) -> FeedbackPublic:
    """Record a rating the caller may give."""
    _check_scope(session, body, principal)
    return FeedbackPublic.model_validate(record(session, body))


def _check_scope(session: Session, body: FeedbackCreate, principal: Principal) -> None:
    """A user rates only answers in its own conversations (the reply quotes them)."""
    if principal.admin:
        return
    if body.message_id is not None:
        conv = session.scalar(
            select(Conversation)
            .join(ConversationMessage, ConversationMessage.conversation_id == Conversation.id)
            .where(ConversationMessage.id == body.message_id)
        )
        missing = f"answer {body.message_id} does not exist"
        ensure_visible(principal, conv.knowledge_base_id if conv else -1, missing)
        if conv is not None and not principal.owns(conv.user_id, conv.api_key_id):
            raise NotFoundError(missing)  # the reply would quote someone else's chat
    elif body.knowledge_base:
        get_kb(session, body.knowledge_base, principal)


def export(session: Session, format: Literal["jsonl", "csv"]) -> tuple[str, str]:
    """Every rating as a file: its text and media type."""
    items = all_feedback(session)
    if format == "csv":
        return as_csv(items), "text/csv; charset=utf-8"
    return "".join(as_jsonl(items)), "application/x-ndjson"


def all_feedback(session: Session) -> list[FeedbackPublic]:
    """Every rating, oldest first."""
    rows = session.scalars(select(Feedback).order_by(Feedback.id))
    return [FeedbackPublic.model_validate(row) for row in rows]


def as_jsonl(items: list[FeedbackPublic]) -> Iterator[str]:
    """One JSON object per line."""
    for item in items:
        yield item.model_dump_json() + "\n"


def as_csv(items: list[FeedbackPublic]) -> str:
    """A CSV file with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for item in items:
        row = item.model_dump(mode="json")
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    return buffer.getvalue()


def spreadsheet_safe(value: object) -> object:
    """User text that a spreadsheet would run as a formula, prefixed with a quote; else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
