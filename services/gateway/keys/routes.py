"""API keys over the API (admin only); ``zhiku keys`` does the same on the database."""

from __future__ import annotations

from fastapi import APIRouter

from services.common.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from services.gateway.auth import AdminDep
from services.gateway.deps import SessionDep
from services.gateway.keys import service

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.get("", response_model=ApiKeysPublic)
def list_keys(session: SessionDep, _admin: AdminDep) -> ApiKeysPublic:
    return service.list_public(session)


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, session: SessionDep, admin: AdminDep) -> ApiKeyCreated:
    """The reply holds the token; it is not stored and cannot be shown again."""
    return service.create(session, body, admin)


@router.delete("/{key_id}", response_model=ApiKeyPublic)
def revoke_key(key_id: int, session: SessionDep, admin: AdminDep) -> ApiKeyPublic:
    return service.revoke(session, key_id, admin)
