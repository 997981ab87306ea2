"""Search a knowledge base."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.schemas import SearchRequest, SearchResponse
from services.gateway.auth import PrincipalDep
from services.gateway.deps import SessionDep, StateDep
from services.gateway.search import service

router = APIRouter(prefix="/api/v1", tags=["search"])


@router.post("/search", response_model=SearchResponse)
def search(
    body: SearchRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> SearchResponse:
    return service.search(state, session, body, principal)
