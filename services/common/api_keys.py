"""API keys: create, list, revoke and look up; the database keeps only their sha256.

Shared by the gateway (``/api/v1/keys`` and the bearer check) and ``zhiku keys``, which works
on the database directly so that the first admin key needs no key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from datetime import datetime

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from services.common.errors import NotFoundError, ValidationFailedError
from services.common.models import ApiKey, KnowledgeBase, User, utcnow

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "zk_"
CREATE_HINT = "create one with 'zhiku keys create --admin'"
# What `keys list` shows of a token: enough to tell keys apart, far too little to guess one.
SHOWN_CHARS = 10


class ApiKeyCreate(BaseModel):
    """An admin key, or a user key for the named knowledge bases."""

    admin: bool = False
    knowledge_bases: list[str] = Field(default_factory=list, max_length=1000)
    name: str = Field("", max_length=100)

    @model_validator(mode="after")
    def _admin_or_scoped(self) -> ApiKeyCreate:
        if self.admin and self.knowledge_bases:
            raise ValueError("an admin key sees every knowledge base: give no knowledge bases")
        if not self.admin and not self.knowledge_bases:
            raise ValueError("a user key needs at least one knowledge base (or make it admin)")
        return self


class ApiKeyPublic(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The first characters of the token, to recognise it.")
    admin: bool
    knowledge_bases: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    token: str = Field(description="The key itself; shown this once, never stored.")


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


def hash_token(token: str) -> str:
    """The stored form of a key: a sha256 suffices for 256-bit random tokens."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def to_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        admin=key.admin,
        knowledge_bases=[kb.name for kb in key.knowledge_bases],
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def create_key(session: Session, body: ApiKeyCreate) -> ApiKeyCreated:
    """Store a new key and return it with its token, which exists nowhere else afterwards."""
    kbs = []
    for name in dict.fromkeys(body.knowledge_bases):
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))
        if kb is None:
            raise ValidationFailedError(f"knowledge base '{name}' does not exist")
        kbs.append(kb)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=body.name,
        prefix=token[:SHOWN_CHARS],
        token_hash=hash_token(token),
        admin=body.admin,
        knowledge_bases=kbs,
    )
    session.add(key)
    session.commit()
    return ApiKeyCreated(**to_public(key).model_dump(), token=token)


def list_keys(session: Session) -> list[ApiKey]:
    query = select(ApiKey).options(selectinload(ApiKey.knowledge_bases)).order_by(ApiKey.id)
    return list(session.scalars(query).all())


def revoke_key(session: Session, key_id: int) -> ApiKey:
    """Mark a key revoked (kept for the record); it stops working at the next request."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(f"API key {key_id} does not exist")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
        if not active_count(session):
            logger.warning(
                "the last API key was revoked: every API call now answers 401 (keyless mode "
                "does not come back once a key has existed); %s",
                CREATE_HINT,
            )
    return key


def find_active(session: Session, token: str) -> ApiKey | None:
    """The live key with this token, with its knowledge bases loaded."""
    return session.scalar(
        select(ApiKey)
        .options(selectinload(ApiKey.knowledge_bases))
        .where(ApiKey.token_hash == hash_token(token), ApiKey.revoked_at.is_(None))
    )


def active_count(session: Session) -> int:
    """How many keys work; none means the gateway serves only its keyless networks."""
    count = session.scalar(
        select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    )
    return int(count or 0)


def ever_created(session: Session) -> bool:
    """Whether any key was ever made, revoked ones included."""
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def keyless_allowed(session: Session, keyless: bool | None, gateway_host: str) -> bool:
    """Whether a caller without a key may be served (from the keyless networks only).

    Never while a key works or a web user exists. ``keyless`` (ZHIKU_KEYLESS) decides when set;
    unset, keyless mode is the out-of-the-box state only: a loopback gateway on a database that
    never held a key.
    """
    if active_count(session) or session.scalar(select(User.id).limit(1)) is not None:
        return False
    if keyless is not None:
        return keyless
    return is_loopback(gateway_host) and not ever_created(session)


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, key_count: int) -> str | None:
    """Why the gateway must not start on ``host``, or None when it may."""
    if key_count or is_loopback(host):
        return None
    return (
        f"refusing to serve on {host} (ZHIKU_GATEWAY_HOST) without API keys: anyone on the "
        "network could read and delete every document. Make an admin key first "
        "('zhiku keys create --admin'), or bind to 127.0.0.1."
    )
