"""Chat grounded in a knowledge base, whole or streamed as Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from services.common.schemas import ChatRequest, ChatResponse
from services.gateway.auth import PrincipalDep
from services.gateway.chat import service
from services.gateway.deps import SessionDep, StateDep

router = APIRouter(prefix="/api/v1", tags=["chat"])


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"}
    },
)
def chat(
    body: ChatRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> ChatResponse | EventSourceResponse:
    return service.chat(state, session, body, principal)
