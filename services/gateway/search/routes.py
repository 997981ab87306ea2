"""Search a knowledge base."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.schemas import SearchRequest, SearchResponse
from services.gateway.auth import PrincipalDep
from services.gateway.deps import SessionDep, StateDep
from services.gateway.knowledge_bases import service as kb_service
from services.gateway.search.service import search_chunks

router = APIRouter(prefix="/api/v1", tags=["search"])


@router.post("/search", response_model=SearchResponse)
def search(
    body: SearchRequest, state: StateDep, session: SessionDep, principal: PrincipalDep
) -> SearchResponse:
    kb = kb_service.get_kb(session, body.knowledge_base, principal)
    hits = search_chunks(state, session, kb, body.query, body.top_k, body.mode, body.rerank)
    return SearchResponse(knowledge_base=kb.name, query=body.query, hits=hits)
