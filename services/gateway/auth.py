"""Who is calling: bearer API keys or web sessions, and which knowledge bases they may see.

A knowledge base the caller may not see answers 404 exactly like one that does not exist, so a
user key learns nothing about the others; a visible one the caller may not change answers 403.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from services.common import api_keys, web_sessions
from services.common.errors import ForbiddenError, NotFoundError, UnauthorizedError
from services.gateway.deps import StateDep
from services.gateway.limits import check_rate
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The caller: an admin, or a user (key or web login) limited to some knowledge bases."""

    key_id: int | None
    name: str
    admin: bool
    kb_ids: frozenset[int] = field(default_factory=frozenset)
    user_id: int | None = None

    def sees(self, kb_id: int) -> bool:
        return self.admin or kb_id in self.kb_ids

    @property
    def ident(self) -> str:
        """Who requests are counted against: the web user, the API key, or the local caller."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"key:{self.key_id}" if self.key_id is not None else "local"

    def owns(self, user_id: int | None, api_key_id: int | None) -> bool:
        """Whether a record owned by this user or key is the caller's (an admin owns all)."""
        if self.admin:
            return True
        if self.user_id is not None:
            return user_id == self.user_id
        return self.key_id is not None and api_key_id == self.key_id


LOCAL = Principal(key_id=None, name="local (keyless mode)", admin=True)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _keyless_client(request: Request, networks: list[str]) -> bool:
    """Whether the peer's socket address is in one of the keyless networks."""
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False  # a real socket always has an IP address; anything else is not trusted
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def _from_token(state: GatewayState, token: str) -> Principal | None:
    """The owner of a live API key or web session token, else None."""
    with state.sessions() as session:
        key = api_keys.find_active(session, token)
        if key is not None:
            kb_ids = frozenset(kb.id for kb in key.knowledge_bases)
            return Principal(key.id, key.name or key.prefix, key.admin, kb_ids)
        user = web_sessions.find_active(session, token)
        if user is not None:
            kb_ids = frozenset(kb.id for kb in user.knowledge_bases)
            return Principal(None, user.username, user.admin, kb_ids, user_id=user.id)
    return None


def _resolve(request: Request, state: GatewayState) -> Principal:
    """The caller of this request; 401 without a valid token unless keyless mode applies."""
    settings = state.settings
    token = bearer(request)
    principal = _from_token(state, token) if token else None
    if principal is not None:
        return principal
    with state.sessions() as session:
        keyless = api_keys.keyless_allowed(session, settings.keyless, settings.gateway_host)
    if not keyless:
        what = "invalid, expired or revoked API key or login" if token else "missing API key"
        raise UnauthorizedError(
            f"{what}: send 'Authorization: Bearer <key>' (no key yet? {api_keys.CREATE_HINT})"
        )
    if not _keyless_client(request, settings.keyless_networks):
        raise UnauthorizedError(
            f"keyless mode serves only {', '.join(settings.keyless_networks)}: "
            f"{api_keys.CREATE_HINT}"
        )
    return LOCAL


def peer_ident(request: Request) -> str:
    """The rate-limit identity of a caller not (yet) authenticated: its address."""
    return "ip:" + (request.client.host if request.client else "unknown")


async def count_request(state: GatewayState, ident: str) -> None:
    """One request against ``ident``'s allowance (429 past it)."""
    await check_rate(state.limiter, state.settings.rate_limit_per_minute, ident)


async def authenticate(request: Request, state: StateDep) -> Principal:
    """The caller, counted against its own rate limit; a failed attempt counts against its IP."""
    try:
        principal = await run_in_threadpool(_resolve, request, state)
    except UnauthorizedError:
        await count_request(state, peer_ident(request))
        raise
    await count_request(state, principal.ident)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_admin(principal: PrincipalDep) -> Principal:
    """403 unless the caller holds an admin key."""
    if not principal.admin:
        raise ForbiddenError("this needs an admin API key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def ensure_visible(principal: Principal, kb_id: int, missing: str, write: bool = False) -> None:
    """404 with ``missing`` when the caller may not see the knowledge base, 403 on a write."""
    if not principal.sees(kb_id):
        raise NotFoundError(missing)
    if write and not principal.admin:
        raise ForbiddenError("changing a knowledge base needs an admin API key")
