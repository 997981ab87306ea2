"""Web users: logins, sessions, owners of conversations, limits per user (real PostgreSQL)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.common import api_keys, users
from services.common.db import MIGRATIONS_DIR, make_engine, make_sessionmaker, upgrade_database
from services.common.models import ApiKey, Conversation, KnowledgeBase, User, UserSession
from services.common.settings import Settings
from services.gateway.app import create_app

pytestmark = pytest.mark.integration
Sessions = sessionmaker[Session]
PASSWORD = "correct horse battery"


def _clear(sessions: Sessions) -> None:
    with sessions() as session:
        for model in (Conversation, UserSession, User, ApiKey):
            session.execute(delete(model))
        session.execute(delete(KnowledgeBase).where(KnowledgeBase.name.like("users-%")))
        session.commit()


@pytest.fixture()
def db(postgres_url: str) -> Iterator[Sessions]:
    """The session's database with no keys, users or conversations before and after."""
    upgrade_database(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    _clear(sessions)
    yield sessions
    _clear(sessions)
    engine.dispose()


@pytest.fixture()
def kb(db: Sessions) -> str:
    with db() as session:
        row = KnowledgeBase(
            name=f"users-{uuid.uuid4().hex[:6]}", embedding_model="m", embedding_dim=3
        )
        session.add(row)
        session.commit()
        return row.name


def _settings(tmp_path: Path, postgres_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": postgres_url,
        "queue_prefix": f"zhiku-users-{uuid.uuid4().hex[:8]}",
        "retriever_url": "http://127.0.0.1:9",  # these tests never reach the retriever
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


def _client(settings: Settings, peer: str = "127.0.0.1") -> TestClient:
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000", client=(peer, 5000))


def _user(sessions: Sessions, name: str, kb: str | None = None) -> None:
    body = users.UserCreate(
        username=name, password=PASSWORD, admin=kb is None, knowledge_bases=[kb] if kb else []
    )
    with sessions() as session:
        users.create_user(session, body)


def _login(client: TestClient, name: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_users_see_only_their_own_conversations(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str
) -> None:
    _user(db, "alice", kb)
    _user(db, "bob", kb)
    _user(db, "root")
    with db() as session:  # a conversation from before owners existed
        kb_id = session.scalars(select(KnowledgeBase.id).where(KnowledgeBase.name == kb)).one()
        legacy = Conversation(knowledge_base_id=kb_id, title="legacy")
        session.add(legacy)
        session.commit()
    with _client(_settings(tmp_path, postgres_url)) as client:
        alice, bob, root = (_login(client, name) for name in ("alice", "bob", "root"))
        made = client.post("/api/v1/conversations", json={"knowledge_base": kb}, headers=alice)
        assert made.status_code == 201
        conv = made.json()["id"]

        def listed(headers: dict[str, str]) -> set[int]:
            response = client.get(
                "/api/v1/conversations", params={"knowledge_base": kb}, headers=headers
            )
            assert response.status_code == 200
            return {c["id"] for c in response.json()["data"]}

        assert listed(alice) == {conv}
        assert listed(bob) == set()
        assert listed(root) == {conv, legacy.id}  # an admin sees every one, owner-less ones too
        for method, body in (("GET", None), ("PATCH", {"title": "mine"}), ("DELETE", None)):
            for caller in (bob, alice):
                response = client.request(
                    method, f"/api/v1/conversations/{legacy.id}", json=body, headers=caller
                )
                assert (response.status_code, response.json()["error_type"]) == (404, "not_found")
            stolen = client.request(method, f"/api/v1/conversations/{conv}", json=body, headers=bob)
            assert (stolen.status_code, stolen.json()["error_type"]) == (404, "not_found")
        assert client.get(f"/api/v1/conversations/{conv}", headers=alice).status_code == 200
        assert client.delete(f"/api/v1/conversations/{conv}", headers=alice).status_code == 204


def test_api_keys_own_their_conversations_too(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str
) -> None:
    with db() as session:
        one, two = (
            api_keys.create_key(session, api_keys.ApiKeyCreate(knowledge_bases=[kb])).token
            for _ in range(2)
        )
    first, second = ({"Authorization": f"Bearer {token}"} for token in (one, two))
    with _client(_settings(tmp_path, postgres_url)) as client:
        conv = client.post("/api/v1/conversations", json={"knowledge_base": kb}, headers=first)
        path = f"/api/v1/conversations/{conv.json()['id']}"
        assert client.get(path, headers=second).status_code == 404
        assert client.delete(path, headers=second).status_code == 404
        assert client.get(path, headers=first).status_code == 200


def test_a_wrong_login_is_401_and_says_not_which_part(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str
) -> None:
    _user(db, "alice", kb)
    with _client(_settings(tmp_path, postgres_url)) as client:
        wrong = client.post("/api/v1/auth/login", json={"username": "alice", "password": "nope"})
        unknown = client.post("/api/v1/auth/login", json={"username": "eve", "password": "nope"})
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert response.json() == {
                "error": "wrong username or password",
                "error_type": "unauthorized",
            }
        empty = client.post("/api/v1/auth/login", json={"username": "alice"})
        assert (empty.status_code, empty.json()["error_type"]) == (422, "validation_error")


def test_expired_and_logged_out_sessions_are_refused(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str
) -> None:
    _user(db, "alice", kb)
    with _client(_settings(tmp_path, postgres_url)) as client:
        first, second = _login(client, "alice"), _login(client, "alice")
        me = client.get("/api/v1/auth/me", headers=first)
        assert me.json() == {"name": "alice", "admin": False, "user": True, "knowledge_bases": [kb]}
        assert client.post("/api/v1/auth/logout", headers=first).status_code == 204
        gone = client.get("/api/v1/auth/me", headers=first)
        assert (gone.status_code, gone.json()["error_type"]) == (401, "unauthorized")
        assert client.get("/api/v1/auth/me", headers=second).status_code == 200  # only that one
        with db() as session:
            session.execute(update(UserSession).values(expires_at=UserSession.created_at))
            session.commit()
        expired = client.get("/api/v1/auth/me", headers=second)
        assert (expired.status_code, expired.json()["error_type"]) == (401, "unauthorized")


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "in-process"])
def test_rate_limits_count_per_user_not_per_address(
    tmp_path: Path, postgres_url: str, redis_url: str, db: Sessions, kb: str, use_redis: bool
) -> None:
    _user(db, "alice", kb)
    _user(db, "bob", kb)
    settings = _settings(
        tmp_path, postgres_url, redis_url=redis_url if use_redis else None, rate_limit_per_minute=5
    )
    with _client(settings) as client:  # both users behind one address, like the web app
        alice, bob = _login(client, "alice"), _login(client, "bob")
        codes = [client.get("/api/v1/auth/me", headers=alice).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        assert client.get("/api/v1/auth/me", headers=bob).status_code == 200
    with _client(settings, peer="10.1.2.3") as guesser:
        # Made-up bearer strings are counted against the address, not each a fresh allowance.
        codes = [
            guesser.get(
                "/api/v1/knowledge-bases", headers={"Authorization": f"Bearer zs_{n}"}
            ).status_code
            for n in range(6)
        ]
        assert codes == [401] * 5 + [429]


def test_passwords_and_tokens_are_stored_hashed_and_never_logged(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str, caplog: pytest.LogCaptureFixture
) -> None:
    _user(db, "root")
    secret = "a long and secret passphrase"
    with caplog.at_level(logging.DEBUG), _client(_settings(tmp_path, postgres_url)) as client:
        root = _login(client, "root")
        made = client.post(
            "/api/v1/users",
            json={"username": "carol", "password": secret, "knowledge_bases": [kb]},
            headers=root,
        )
        assert made.status_code == 201 and "password" not in made.text
        token = _login(client, "carol", secret)["Authorization"].removeprefix("Bearer ")
        client.post("/api/v1/auth/login", json={"username": "carol", "password": secret + "x"})
    assert secret not in caplog.text and token not in caplog.text
    with db() as session:
        carol = session.scalars(select(User).where(User.username == "carol")).one()
        assert carol.password_hash.startswith("$argon2id$") and secret not in carol.password_hash
        assert users.password_matches(carol.password_hash, secret)
        stored = session.scalars(
            select(UserSession.token_hash).where(UserSession.user_id == carol.id)
        )
        assert token not in set(stored) and api_keys.hash_token(token) in set(
            session.scalars(select(UserSession.token_hash))
        )


def test_users_end_keyless_mode_and_the_web_app_is_told_to_log_in(
    tmp_path: Path, postgres_url: str, db: Sessions, kb: str
) -> None:
    settings = _settings(tmp_path, postgres_url, keyless=True)
    with _client(settings) as client:
        assert client.get("/api/v1/auth/config").json() == {"login_required": False}
        assert client.get("/api/v1/knowledge-bases").status_code == 200  # keyless, as before
        _user(db, "alice", kb)
        assert client.get("/api/v1/auth/config").json() == {"login_required": True}
        refused = client.get("/api/v1/knowledge-bases")
        assert (refused.status_code, refused.json()["error_type"]) == (401, "unauthorized")
        mine = client.get("/api/v1/knowledge-bases", headers=_login(client, "alice"))
        assert [item["name"] for item in mine.json()["data"]] == [kb]


def test_conversations_from_before_owners_stay_admin_only_on_sqlite(tmp_path: Path) -> None:
    """The migration keeps older conversations, owner-less: only an admin lists them."""
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO knowledge_bases (name, description, embedding_model, embedding_dim, "
            "created_at) VALUES ('old', '', 'm', 3, '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO conversations (knowledge_base_id, title, created_at, updated_at) "
            "VALUES (1, 'before', '2026-01-01', '2026-01-01')"
        )
    engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=url, retriever_url="http://127.0.0.1:9")
    with _client(settings) as client:
        assert client.get("/api/v1/conversations/1").json()["title"] == "before"  # keyless admin
        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            row = session.get(Conversation, 1)
            assert row is not None and (row.user_id, row.api_key_id) == (None, None)
            alice = users.UserCreate(username="alice", password=PASSWORD, knowledge_bases=["old"])
            users.create_user(session, alice)
        engine.dispose()
        listed = client.get(
            "/api/v1/conversations",
            params={"knowledge_base": "old"},
            headers=_login(client, "alice"),
        )
        assert listed.json()["count"] == 0
