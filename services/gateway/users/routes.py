"""Web login (``/api/v1/auth``) and web users (``/api/v1/users``, admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from services.common.users import UserCreate, UserPublic, UsersPublic
from services.common.web_sessions import LoginConfig, LoginPublic, LoginRequest, WhoAmI
from services.gateway.auth import AdminDep, PrincipalDep, bearer, count_request, peer_ident
from services.gateway.deps import SessionDep, StateDep
from services.gateway.users import service

login_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
router = APIRouter(tags=["users"])


@login_router.get("/config", response_model=LoginConfig)
def login_config(session: SessionDep) -> LoginConfig:
    """Whether web users exist, so that the web app shows its login form."""
    return LoginConfig(login_required=service.login_required(session))


@login_router.post("/login", response_model=LoginPublic)
async def login(body: LoginRequest, request: Request, state: StateDep) -> LoginPublic:
    """A session token for a username and password; 401 ``unauthorized`` on a wrong pair."""
    # Counted per address and per name: guessing is slow from one host or against one user.
    await count_request(state, peer_ident(request))
    await count_request(state, "login:" + body.username.lower())
    return await run_in_threadpool(service.login, state, body)


@router.post("/api/v1/auth/logout", status_code=204)
def logout(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """End the session whose token made this request."""
    service.logout(session, bearer(request), principal)
    return Response(status_code=204)


@router.get("/api/v1/auth/me", response_model=WhoAmI)
def whoami(session: SessionDep, principal: PrincipalDep) -> WhoAmI:
    return WhoAmI(
        name=principal.name,
        admin=principal.admin,
        user=principal.user_id is not None,
        knowledge_bases=service.kb_names(session, principal),
    )


@router.get("/api/v1/users", response_model=UsersPublic)
def list_users(session: SessionDep, _admin: AdminDep) -> UsersPublic:
    return service.list_public(session)


@router.post("/api/v1/users", status_code=201, response_model=UserPublic)
def create_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserPublic:
    return service.create(session, body, admin)


@router.delete("/api/v1/users/{username}", status_code=204)
def remove_user(username: str, session: SessionDep, admin: AdminDep) -> Response:
    service.remove(session, username, admin)
    return Response(status_code=204)
