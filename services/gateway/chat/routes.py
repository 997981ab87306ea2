"""Chat grounded in a knowledge base, whole or streamed as Server-Sent Events."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from services.common.schemas import ChatRequest, ChatResponse
from services.gateway.auth import PrincipalDep
from services.gateway.chat import service
from services.gateway.deps import SessionDep, StateDep

router = APIRouter(prefix="/api/v1", tags=["chat"])
CLIENT_CLOSED = 499


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"}
    },
)
async def chat(
    body: ChatRequest,
    request: Request,
    state: StateDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> ChatResponse | EventSourceResponse | Response:
    pipeline = await run_in_threadpool(service.start, state, session, body, principal)
    if body.stream:
        return service.streamed(state, pipeline, body.conversation_id)
    reply = await service.whole(state, pipeline, body.conversation_id, request.is_disconnected)
    # None: the client is gone, and nobody reads this (499: nginx's "client closed request").
    return reply if reply is not None else Response(status_code=CLIENT_CLOSED)
