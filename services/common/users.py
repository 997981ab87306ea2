"""Web users: create, list and remove; passwords are kept only as argon2id hashes.

Shared by the gateway (``/api/v1/users`` and the login) and ``zhiku users``, which works on the
database directly so that the first user needs no login.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from services.common.errors import ConflictError, NotFoundError, ValidationFailedError
from services.common.models import KnowledgeBase, User

logger = logging.getLogger(__name__)

# argon2-cffi's defaults (RFC 9106's low-memory profile: argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()
MIN_PASSWORD_CHARS = 8
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


class UserCreate(BaseModel):
    """An admin user, or a user of the named knowledge bases."""

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=1024, repr=False)
    admin: bool = False
    knowledge_bases: list[str] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _admin_or_scoped(self) -> UserCreate:
        if self.admin and self.knowledge_bases:
            raise ValueError("an admin sees every knowledge base: give no knowledge bases")
        if not self.admin and not self.knowledge_bases:
            raise ValueError("a user needs at least one knowledge base (or make it admin)")
        return self


class UserPublic(BaseModel):
    id: int
    username: str
    admin: bool
    knowledge_bases: list[str]
    created_at: datetime


class UsersPublic(BaseModel):
    data: list[UserPublic]
    count: int


def hash_password(password: str) -> str:
    """An argon2id hash with its own salt and parameters (``$argon2id$…``)."""
    return _hasher.hash(password)


def password_matches(stored_hash: str, password: str) -> bool:
    """Whether ``password`` is the one hashed; never raises on a wrong or damaged hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so that a miss takes as long as a wrong password."""
    return hash_password("not a password anyone has")


def check_login(session: Session, username: str, password: str) -> User | None:
    """The user with this username and password, else None (same time either way)."""
    user = session.scalar(
        select(User).options(selectinload(User.knowledge_bases)).where(User.username == username)
    )
    if user is None:
        password_matches(_dummy_hash(), password)
        return None
    if not password_matches(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def to_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        admin=user.admin,
        knowledge_bases=[kb.name for kb in user.knowledge_bases],
        created_at=user.created_at,
    )


def create_user(session: Session, body: UserCreate) -> UserPublic:
    """Store a new user with the hash of its password."""
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise ConflictError(f"user '{body.username}' already exists")
    kbs = []
    for name in dict.fromkeys(body.knowledge_bases):
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))
        if kb is None:
            raise ValidationFailedError(f"knowledge base '{name}' does not exist")
        kbs.append(kb)
    user = User(
        username=body.username,
        password_hash=hash_password(body.password),
        admin=body.admin,
        knowledge_bases=kbs,
    )
    session.add(user)
    session.commit()
    logger.info("user %d (%s) created", user.id, user.username)
    return to_public(user)


def list_users(session: Session) -> list[User]:
    query = select(User).options(selectinload(User.knowledge_bases)).order_by(User.id)
    return list(session.scalars(query).all())


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"user '{username}' does not exist")
    return user


def remove_user(session: Session, username: str) -> None:
    """Delete a user and its sessions; its conversations stay, visible to admins only."""
    user = find_user(session, username)
    session.delete(user)
    session.commit()
    logger.info("user %s removed", username)


def user_count(session: Session) -> int:
    """How many users exist; any means the web app asks for a login."""
    return int(session.scalar(select(func.count()).select_from(User)) or 0)
