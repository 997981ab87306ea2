"""Liveness and readiness."""

from __future__ import annotations

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from services.common.schemas import HealthPublic
from services.gateway.deps import StateDep
from services.gateway.state import GatewayState

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


def _check_database(state: GatewayState) -> str:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means not ready
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _check_llm(state: GatewayState) -> str:
    try:
        workers = state.backend.heartbeats.alive("llm")
    except (redis.RedisError, OSError) as exc:
        return f"unavailable: {exc}"
    if not workers:
        return "unavailable: no llm worker has reported in the last 30 s"
    # A worker streaming from a model server says whether that server answered its last probe.
    down = sorted(
        {
            f"{w.get('model')} at {w.get('base_url')}: {w['engine']}"
            for w in workers
            if not str(w.get("engine", "ok")).startswith("ok")
        }
    )
    if down:
        return f"unavailable: model server {'; '.join(down)}"
    backends = sorted({_describe(w) for w in workers})
    return f"ok: {len(workers)} worker(s), {', '.join(backends)}"


def _describe(worker: dict[str, object]) -> str:
    if worker.get("backend") == "openai":
        return f"openai ({worker.get('model')} at {worker.get('base_url')})"
    return f"{worker.get('backend')} ({worker.get('gpu_layers')} GPU layers)"


@router.get("/readyz", response_model=HealthPublic, responses={503: {"model": HealthPublic}})
def readyz(state: StateDep) -> JSONResponse:
    checks = {
        "database": _check_database(state),
        "broker": state.backend.probe(),
        "retriever": "ok" if state.retriever.ready() else "unavailable: not answering /readyz",
        "llm": _check_llm(state),
    }
    ok = all(v.startswith("ok") for v in checks.values())
    body = HealthPublic(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())
