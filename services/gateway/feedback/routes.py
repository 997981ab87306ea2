"""Feedback on answers, and its export as JSON lines or CSV."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from sqlalchemy import select

from services.common.conversation_schemas import FeedbackCreate, FeedbackPublic
from services.common.models import Conversation, ConversationMessage
from services.gateway.auth import AdminDep, Principal, PrincipalDep, ensure_visible
from services.gateway.deps import SessionDep
from services.gateway.feedback import service as feedback_service
from services.gateway.knowledge_bases import service as kb_service

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])


@router.post("", status_code=201, response_model=FeedbackPublic)
def create_feedback(
    body: FeedbackCreate, session: SessionDep, principal: PrincipalDep
) -> FeedbackPublic:
    _check_scope(session, body, principal)
    return FeedbackPublic.model_validate(feedback_service.record(session, body))


@router.get(
    "/export",
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def export_feedback(
    session: SessionDep, _admin: AdminDep, format: Literal["jsonl", "csv"] = "jsonl"
) -> Response:
    items = feedback_service.all_feedback(session)
    if format == "csv":
        body, media = feedback_service.as_csv(items), "text/csv; charset=utf-8"
    else:
        body, media = "".join(feedback_service.as_jsonl(items)), "application/x-ndjson"
    headers = {"content-disposition": f'attachment; filename="zhiku-feedback.{format}"'}
    return Response(content=body, media_type=media, headers=headers)


def _check_scope(session: SessionDep, body: FeedbackCreate, principal: Principal) -> None:
    """A user key rates only answers in its own knowledge bases (the reply quotes them)."""
    if principal.admin:
        return
    if body.message_id is not None:
        kb_id = session.scalar(
            select(Conversation.knowledge_base_id)
            .join(ConversationMessage, ConversationMessage.conversation_id == Conversation.id)
            .where(ConversationMessage.id == body.message_id)
        )
        ensure_visible(principal, kb_id or -1, f"answer {body.message_id} does not exist")
    elif body.knowledge_base:
        kb_service.get_kb(session, body.knowledge_base, principal)
