"""Feedback on answers, and its export as JSON lines or CSV."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from services.common.conversation_schemas import FeedbackCreate, FeedbackPublic
from services.gateway.auth import AdminDep, PrincipalDep
from services.gateway.deps import SessionDep
from services.gateway.feedback import service

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])


@router.post("", status_code=201, response_model=FeedbackPublic)
def create_feedback(
    body: FeedbackCreate, session: SessionDep, principal: PrincipalDep
) -> FeedbackPublic:
    return service.create(session, body, principal)


@router.get(
    "/export",
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def export_feedback(
    session: SessionDep, _admin: AdminDep, format: Literal["jsonl", "csv"] = "jsonl"
) -> Response:
    body, media = service.export(session, format)
    headers = {"content-disposition": f'attachment; filename="zhiku-feedback.{format}"'}
    return Response(content=body, media_type=media, headers=headers)
