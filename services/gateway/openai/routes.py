"""OpenAI-compatible endpoints: each knowledge base is a model named 'zhiku:<name>'."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.gateway.auth import PrincipalDep
from services.gateway.deps import SessionDep, StateDep
from services.gateway.openai import service
from services.gateway.openai.schemas import OpenAIChatRequest, OpenAIChatResponse, OpenAIModelList

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models", response_model=OpenAIModelList)
def list_models(session: SessionDep, principal: PrincipalDep) -> OpenAIModelList:
    return service.list_models(session, principal)


@router.post("/chat/completions", response_model=OpenAIChatResponse)
def chat_completions(
    body: OpenAIChatRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> OpenAIChatResponse | StreamingResponse:
    reply = service.complete(state, session, body, principal)
    if isinstance(reply, OpenAIChatResponse):
        return reply
    return StreamingResponse(reply, media_type="text/event-stream")
