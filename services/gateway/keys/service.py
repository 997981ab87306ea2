"""API keys over the API; the records are services.common.api_keys', shared with ``zhiku keys``."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from services.common import api_keys
from services.common.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeysPublic
from services.gateway.auth import Principal

logger = logging.getLogger(__name__)


def list_public(session: Session) -> ApiKeysPublic:
    data = [api_keys.to_public(key) for key in api_keys.list_keys(session)]
    return ApiKeysPublic(data=data, count=len(data))


def create(session: Session, body: ApiKeyCreate, admin: Principal) -> ApiKeyCreated:
    created = api_keys.create_key(session, body)
    logger.info("key %d (%s) created by %s", created.id, created.prefix, admin.name)
    return created


def revoke(session: Session, key_id: int, admin: Principal) -> ApiKeyPublic:
    key = api_keys.revoke_key(session, key_id)
    logger.info("key %d (%s) revoked by %s", key.id, key.prefix, admin.name)
    return api_keys.to_public(key)
