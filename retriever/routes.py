"""Internal HTTP endpoints; thin: parse, call one function in ``retriever.service``, answer."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from retriever import service
from retriever.state import EmbedderDep, StateDep, StoreDep
from services.common.errors import UnauthorizedError
from services.common.retriever_schemas import (
    EmbedderInfo,
    IndexAddRequest,
    IndexAddResponse,
    IndexDeleteRequest,
    IndexDeleteResponse,
    IndexDropResponse,
    IndexIds,
    IndexStats,
    RetrieverReadiness,
    RetrieverSearchRequest,
    RetrieverSearchResponse,
)
from services.common.schemas import HealthPublic

# Handlers are plain ``def``: FAISS, jieba and the embedder are CPU-bound, so FastAPI runs them
# in its threadpool instead of blocking the event loop.
router = APIRouter()


def require_internal_token(request: Request, state: StateDep) -> None:
    """401 unless the caller sends ZHIKU_INTERNAL_TOKEN as its bearer key (when one is set)."""
    expected = state.settings.internal_token
    if expected is None:
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    given = sent.strip().encode() if scheme.lower() == "bearer" else b""
    if not secrets.compare_digest(given, expected.get_secret_value().encode()):
        raise UnauthorizedError("the internal API needs 'Authorization: Bearer <internal token>'")


# Everything but the health checks: only the gateway and the workers may call these.
internal = APIRouter(prefix="/internal", dependencies=[Depends(require_internal_token)])

KbId = Annotated[int, PathParam(ge=0, description="The knowledge base's database id.")]


@router.get("/healthz", tags=["health"])
def healthz() -> HealthPublic:
    """The process is up."""
    return HealthPublic(status="ok")


@router.get("/readyz", tags=["health"])
def readyz(state: StateDep) -> RetrieverReadiness:
    """200 once the embedder has loaded (503 not_ready before); "degraded" with the knowledge
    bases whose unreadable index waits for its rebuild (still 200: the retriever serves, and the
    ingestion worker that rebuilds them waits for it to be ready)."""
    embedder = state.require_embedder()
    rebuild = state.store.rebuild_needed()
    return RetrieverReadiness(
        status="degraded" if rebuild else "ok",
        checks={"embedder": embedder.name},
        rebuild_needed=rebuild,
    )


@router.post("/internal/indexes/{kb_id}/rebuilt", tags=["internal"])
def rebuilt(kb_id: KbId, store: StoreDep) -> RetrieverReadiness:
    """The ingestion worker put every chunk of the knowledge base back: drop its flag."""
    store.mark_rebuilt(kb_id)
    rebuild = store.rebuild_needed()
    return RetrieverReadiness(status="degraded" if rebuild else "ok", rebuild_needed=rebuild)


@internal.get("/info", tags=["internal"])
def info(embedder: EmbedderDep) -> EmbedderInfo:
    """Name and dimension of the loaded embedder."""
    return EmbedderInfo(embedding_model=embedder.name, dim=embedder.dim)


@internal.post("/indexes/{kb_id}/chunks", tags=["internal"])
def add_chunks(
    kb_id: KbId, body: IndexAddRequest, store: StoreDep, embedder: EmbedderDep
) -> IndexAddResponse:
    """Add or replace chunks in both indexes of a knowledge base, persisted before answering."""
    added, total = service.add_chunks(store, embedder, kb_id, body)
    return IndexAddResponse(added=added, total=total)


@internal.post("/indexes/{kb_id}/delete", tags=["internal"])
def delete_chunks(kb_id: KbId, body: IndexDeleteRequest, store: StoreDep) -> IndexDeleteResponse:
    """Remove chunks from both indexes, persisted before answering."""
    removed, total = store.remove(kb_id, body.chunk_ids)
    return IndexDeleteResponse(removed=removed, total=total)


@internal.delete("/indexes/{kb_id}", tags=["internal"])
def drop_index(kb_id: KbId, store: StoreDep) -> IndexDropResponse:
    """Delete a knowledge base's whole index directory (200 even if there was none)."""
    return IndexDropResponse(dropped=store.drop(kb_id))


@internal.get("/indexes/{kb_id}/stats", tags=["internal"])
def index_stats(kb_id: KbId, store: StoreDep) -> IndexStats:
    """Chunk count and embedding model of an index."""
    return store.stats(kb_id)


@internal.get("/indexes/{kb_id}/ids", tags=["internal"])
def index_ids(kb_id: KbId, store: StoreDep) -> IndexIds:
    """Every chunk id in an index, so the ingestion worker can reconcile it with the database."""
    ids = store.ids(kb_id)
    return IndexIds(ids=ids, count=len(ids))


@internal.post("/search", tags=["internal"])
def search(body: RetrieverSearchRequest, state: StateDep) -> RetrieverSearchResponse:
    """Dense, keyword or hybrid (RRF) search in one knowledge base."""
    embedder = None if body.mode == "keyword" else state.require_embedder()
    hits = service.search(state.store, embedder, body, state.settings.retrieval)
    return RetrieverSearchResponse(hits=hits)
