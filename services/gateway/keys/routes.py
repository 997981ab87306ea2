"""API keys over the API (admin only); ``zhiku keys`` does the same on the database."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from services.common import api_keys
from services.common.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from services.gateway.auth import AdminDep
from services.gateway.deps import SessionDep

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.get("", response_model=ApiKeysPublic)
def list_keys(session: SessionDep, _admin: AdminDep) -> ApiKeysPublic:
    data = [api_keys.to_public(key) for key in api_keys.list_keys(session)]
    return ApiKeysPublic(data=data, count=len(data))


@router.post("", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, session: SessionDep, admin: AdminDep) -> ApiKeyCreated:
    """The reply holds the token; it is not stored and cannot be shown again."""
    created = api_keys.create_key(session, body)
    logger.info("key %d (%s) created by %s", created.id, created.prefix, admin.name)
    return created


@router.delete("/{key_id}", response_model=ApiKeyPublic)
def revoke_key(key_id: int, session: SessionDep, admin: AdminDep) -> ApiKeyPublic:
    key = api_keys.revoke_key(session, key_id)
    logger.info("key %d (%s) revoked by %s", key.id, key.prefix, admin.name)
    return api_keys.to_public(key)
