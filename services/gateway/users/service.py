"""Web users and logins over the API; the records are services.common.users' and web_sessions'."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import users, web_sessions
from services.common.errors import UnauthorizedError, ValidationFailedError
from services.common.models import KnowledgeBase
from services.common.users import UserCreate, UserPublic, UsersPublic
from services.common.web_sessions import LoginPublic, LoginRequest
from services.gateway.auth import Principal
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

WRONG_LOGIN = "wrong username or password"


def login_required(session: Session) -> bool:
    return users.user_count(session) > 0


def login(state: GatewayState, body: LoginRequest) -> LoginPublic:
    """A new session, or 401 without saying whether the name or the password was wrong."""
    with state.sessions() as session:
        user = users.check_login(session, body.username, body.password)
        if user is None:
            logger.info("failed login for %r", body.username)
            raise UnauthorizedError(WRONG_LOGIN)
        return web_sessions.start(session, user, state.settings.session_hours)


def logout(session: Session, token: str | None, principal: Principal) -> None:
    """End the caller's own session; an API key has none to end."""
    if principal.user_id is None or token is None:
        raise ValidationFailedError("only a web login can log out; API keys are revoked instead")
    web_sessions.end(session, token)
    logger.info("user %d (%s) logged out", principal.user_id, principal.name)


def kb_names(session: Session, principal: Principal) -> list[str]:
    query = select(KnowledgeBase.name).order_by(KnowledgeBase.name)
    if not principal.admin:
        query = query.where(KnowledgeBase.id.in_(principal.kb_ids))
    return list(session.scalars(query))


def list_public(session: Session) -> UsersPublic:
    data = [users.to_public(user) for user in users.list_users(session)]
    return UsersPublic(data=data, count=len(data))


def create(session: Session, body: UserCreate, admin: Principal) -> UserPublic:
    created = users.create_user(session, body)
    logger.info("user %s created by %s", created.username, admin.name)
    return created


def remove(session: Session, username: str, admin: Principal) -> None:
    users.remove_user(session, username)
    logger.info("user %s removed by %s", username, admin.name)
