"""OpenAI-compatible endpoints: each knowledge base is a model named 'zhiku:<name>'."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from services.gateway.auth import PrincipalDep
from services.gateway.chat.routes import CLIENT_CLOSED
from services.gateway.deps import SessionDep, StateDep
from services.gateway.openai import service
from services.gateway.openai.schemas import OpenAIChatRequest, OpenAIChatResponse, OpenAIModelList

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=OpenAIModelList)
def list_models(session: SessionDep, principal: PrincipalDep) -> OpenAIModelList:
    return service.list_models(session, principal)


@router.post("/chat/completions", response_model=OpenAIChatResponse)
async def chat_completions(
    body: OpenAIChatRequest,
    request: Request,
    state: StateDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> OpenAIChatResponse | Response:
    begun = await run_in_threadpool(service.start, state, session, body, principal)
    if isinstance(begun.turn, OpenAIChatResponse):
        return begun.turn
    if begun.turn is not None:  # the model's whole tool turn, sent as chunks
        return StreamingResponse(begun.turn, media_type="text/event-stream")
    assert begun.pipeline is not None
    if body.stream:
        return service.streamed(state, body, begun.pipeline)
    reply = await service.whole(body, begun.pipeline, request.is_disconnected, begun.searched)
    # None: the client is gone, and nobody reads this (499: nginx's "client closed request").
    return reply if reply is not None else Response(status_code=CLIENT_CLOSED)
