"""Web logins: a random token per login, stored as its sha256, ending at expiry or logout."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from services.common.api_keys import hash_token
from services.common.models import User, UserSession, utcnow

logger = logging.getLogger(__name__)

# Tells a session token from an API key (zk_) at a glance, in logs and in support requests.
TOKEN_PREFIX = "zs_"


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, repr=False)


class LoginPublic(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>' until expires_at.")
    expires_at: datetime
    username: str
    admin: bool
    knowledge_bases: list[str]


class LoginConfig(BaseModel):
    login_required: bool = Field(description="Whether web users exist: the web app asks to log in.")


class WhoAmI(BaseModel):
    name: str
    admin: bool
    user: bool = Field(description="A web login (else an API key or keyless mode).")
    knowledge_bases: list[str]


def start(session: Session, user: User, hours: float) -> LoginPublic:
    """A new session for a user whose password was just checked."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(hours=hours)
    session.add(UserSession(user_id=user.id, token_hash=hash_token(token), expires_at=expires))
    session.commit()
    logger.info("user %d (%s) logged in", user.id, user.username)
    return LoginPublic(
        token=token,
        expires_at=expires,
        username=user.username,
        admin=user.admin,
        knowledge_bases=[kb.name for kb in user.knowledge_bases],
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored one is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def find_active(session: Session, token: str) -> User | None:
    """The user of a live (unexpired, not logged out) session token, knowledge bases loaded."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(
        select(UserSession)
        .options(selectinload(UserSession.user).selectinload(User.knowledge_bases))
        .where(UserSession.token_hash == hash_token(token), UserSession.revoked_at.is_(None))
    )
    if row is None or _aware(row.expires_at) <= utcnow():
        return None
    return row.user


def end(session: Session, token: str) -> bool:
    """Log a session out; whether it was live."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.token_hash == hash_token(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))
