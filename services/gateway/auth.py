"""Who is calling: bearer API keys, and which knowledge bases the caller may see.

A knowledge base the caller may not see answers 404 exactly like one that does not exist, so a
user key learns nothing about the others; a visible one the caller may not change answers 403.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.common import api_keys
from services.common.errors import ForbiddenError, NotFoundError, UnauthorizedError
from services.gateway.deps import StateDep

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """The caller: an admin, or a user key limited to some knowledge bases (by id)."""

    key_id: int | None
    name: str
    admin: bool
    kb_ids: frozenset[int] = field(default_factory=frozenset)

    def sees(self, kb_id: int) -> bool:
        return self.admin or kb_id in self.kb_ids


LOCAL = Principal(key_id=None, name="local (keyless mode)", admin=True)


def _bearer(request: Request) -> str | None:
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


def authenticate(request: Request, state: StateDep) -> Principal:
    """The caller of this request; 401 without a valid key unless keyless mode applies."""
    settings = state.settings
    token = _bearer(request)
    with state.sessions() as session:
        key = api_keys.find_active(session, token) if token else None
        if key is not None:
            kb_ids = frozenset(kb.id for kb in key.knowledge_bases)
            return Principal(key.id, key.name or key.prefix, key.admin, kb_ids)
        keyless = api_keys.keyless_allowed(session, settings.keyless, settings.gateway_host)
    if not keyless:
        what = "invalid or revoked API key" if token else "missing API key"
        raise UnauthorizedError(
            f"{what}: send 'Authorization: Bearer <key>' (no key yet? {api_keys.CREATE_HINT})"
        )
    if not _keyless_client(request, settings.keyless_networks):
        raise UnauthorizedError(
            f"keyless mode serves only {', '.join(settings.keyless_networks)}: "
            f"{api_keys.CREATE_HINT}"
        )
    return LOCAL


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
