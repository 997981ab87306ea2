"""The gateway's doors: API keys, keyless mode, rate and body limits, CORS (real services)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from services.common import api_keys
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.models import ApiKey
from services.common.settings import Settings
from services.gateway.app import create_app

pytestmark = pytest.mark.integration
Sessions = sessionmaker[Session]


def _settings(tmp_path: Path, postgres_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": postgres_url,
        "queue_prefix": f"zhiku-sec-{uuid.uuid4().hex[:8]}",
        "retriever_url": "http://127.0.0.1:9",  # these tests never reach the retriever
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.fixture()
def db(postgres_url: str) -> Iterator[Sessions]:
    """The session's database with no API keys before and after each test."""
    upgrade_database(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        session.execute(delete(ApiKey))
        session.commit()
    yield sessions
    with sessions() as session:
        session.execute(delete(ApiKey))
        session.commit()
    engine.dispose()


def _key(sessions: Sessions, **body: object) -> str:
    with sessions() as session:
        return api_keys.create_key(session, api_keys.ApiKeyCreate(**body)).token


def _client(app: FastAPI, peer: str = "127.0.0.1", host: str = "127.0.0.1:8000") -> TestClient:
    """A client from a real socket address to a Host the gateway answers by default."""
    return TestClient(app, base_url=f"http://{host}", client=(peer, 5000))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_with_no_keys_only_local_callers_are_served(
    tmp_path: Path, postgres_url: str, db: object
) -> None:
    app = create_app(_settings(tmp_path, postgres_url))
    with _client(app) as local:
        assert local.get("/api/v1/knowledge-bases").status_code == 200
    with _client(app, peer="10.2.3.4") as remote:
        response = remote.get("/api/v1/knowledge-bases")
        assert response.status_code == 401
        assert response.json()["error_type"] == "unauthorized"
        assert "zhiku keys create --admin" in response.json()["error"]
        assert remote.get("/healthz").status_code == 200


def test_network_bind_without_keys_is_refused_at_start(
    tmp_path: Path, postgres_url: str, db: object
) -> None:
    app = create_app(_settings(tmp_path, postgres_url, gateway_host="0.0.0.0"))
    with pytest.raises(RuntimeError, match="ZHIKU_GATEWAY_HOST"), _client(app):
        pass


def test_keys_are_required_checked_and_revocable(
    tmp_path: Path,
    postgres_url: str,
    db: Sessions,
) -> None:
    admin = _key(db, admin=True, name="ops")
    app = create_app(_settings(tmp_path, postgres_url, gateway_host="0.0.0.0"))
    with _client(app) as client:
        missing = client.get("/api/v1/knowledge-bases")
        wrong = client.get("/api/v1/knowledge-bases", headers=_bearer("zk_not-a-key"))
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert missing.json()["error_type"] == wrong.json()["error_type"] == "unauthorized"
        assert client.get("/api/v1/knowledge-bases", headers=_bearer(admin)).status_code == 200
        listed = client.get("/api/v1/keys", headers=_bearer(admin)).json()
        assert [k["name"] for k in listed["data"]] == ["ops"]
        assert "token" not in listed["data"][0] and admin not in str(listed)
        made = client.post("/api/v1/keys", json={"admin": True}, headers=_bearer(admin))
        assert made.status_code == 201 and made.json()["token"].startswith("zk_")
        second = made.json()["token"]
        revoked = client.delete(f"/api/v1/keys/{made.json()['id']}", headers=_bearer(admin))
        assert revoked.json()["revoked_at"] is not None
        assert client.get("/api/v1/keys", headers=_bearer(second)).status_code == 401
    with db() as session:  # only the hash is stored
        stored = [key.token_hash for key in api_keys.list_keys(session)]
    assert api_keys.hash_token(admin) in stored and admin not in stored


def _api_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with parameters filled in) of every /api and /v1 operation."""
    ops = []
    for path, methods in app.openapi()["paths"].items():
        if path.startswith(("/api/", "/v1/")):
            filled = re.sub(r"\{[^}]+\}", "1", path)
            ops += [(method.upper(), filled) for method in methods]
    return ops


def test_every_api_route_needs_a_key(tmp_path: Path, postgres_url: str, db: Sessions) -> None:
    """A route added later without the key check fails here."""
    _key(db, admin=True)
    app = create_app(_settings(tmp_path, postgres_url))
    operations = _api_operations(app)
    assert len(operations) > 15
    with _client(app) as client:
        statuses = {f"{m} {p}": client.request(m, p, json={}).status_code for m, p in operations}
    public = {"GET /api/v1/auth/config", "POST /api/v1/auth/login"}  # the way in
    assert {op: code for op, code in statuses.items() if code != 401 and op not in public} == {}


def test_user_keys_cannot_manage(tmp_path: Path, postgres_url: str, db: Sessions) -> None:
    _key(db, admin=True)
    app = create_app(_settings(tmp_path, postgres_url))
    with _client(app) as client:
        with db() as session:
            from services.common.models import KnowledgeBase

            kb = KnowledgeBase(
                name=f"sec-{uuid.uuid4().hex[:6]}", embedding_model="m", embedding_dim=3
            )
            session.add(kb)
            session.commit()
            kb_name = kb.name
        user = _key(db, knowledge_bases=[kb_name])
        headers = _bearer(user)
        for method, path, body in (
            ("GET", "/api/v1/keys", None),
            ("POST", "/api/v1/keys", {"admin": True}),
            ("POST", "/api/v1/knowledge-bases", {"name": "mine"}),
            ("DELETE", f"/api/v1/knowledge-bases/{kb_name}", None),
            ("PATCH", f"/api/v1/knowledge-bases/{kb_name}", {"description": "x"}),
            ("DELETE", f"/api/v1/knowledge-bases/{kb_name}/documents/1", None),
            ("GET", "/api/v1/feedback/export", None),
        ):
            response = client.request(method, path, json=body, headers=headers)
            assert (path, response.status_code) == (path, 403)
            assert response.json()["error_type"] == "forbidden"
        assert client.get(f"/api/v1/knowledge-bases/{kb_name}", headers=headers).status_code == 200
        with db() as session:
            session.delete(session.get(KnowledgeBase, kb.id))
            session.commit()


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "in-process"])
def test_rate_limit_per_key(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    db: Sessions,
    use_redis: bool,
) -> None:
    first, second = _key(db, admin=True), _key(db, admin=True)
    settings = _settings(
        tmp_path, postgres_url, redis_url=redis_url if use_redis else None, rate_limit_per_minute=5
    )
    with _client(create_app(settings)) as client:
        codes = [client.get("/api/v1/keys", headers=_bearer(first)).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        refused = client.get("/api/v1/keys", headers=_bearer(first))
        assert refused.json()["error_type"] == "overloaded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert client.get("/api/v1/keys", headers=_bearer(second)).status_code == 200
        assert client.get("/healthz").status_code == 200  # health checks are never limited


def test_oversized_bodies_are_refused_early(tmp_path: Path, postgres_url: str, db: object) -> None:
    settings = _settings(tmp_path, postgres_url, max_upload_mb=1, max_request_mb=1)
    with _client(create_app(settings)) as client:
        url = "/api/v1/knowledge-bases/none/documents"
        declared = client.post(url, content=b"x" * 10, headers={"content-length": str(50 * 2**20)})
        assert declared.status_code == 413
        big = b"--b\r\n" + b"x" * (3 * 2**20)
        streamed = client.post(
            url,
            content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["error_type"] == "payload_too_large"
        huge_json = client.post("/api/v1/search", json={"query": "x" * (2 * 2**20)})
        assert huge_json.status_code == 413


def test_cors_is_closed_unless_configured(tmp_path: Path, postgres_url: str, db: object) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with _client(create_app(_settings(tmp_path, postgres_url))) as client:
        closed = client.options("/api/v1/search", headers=preflight)
        assert "access-control-allow-origin" not in closed.headers
    allowed = "https://app.example"
    settings = _settings(tmp_path, postgres_url, cors_origins=[allowed])
    with _client(create_app(settings)) as client:
        evil = client.options("/api/v1/search", headers=preflight)
        assert "access-control-allow-origin" not in evil.headers
        ok = client.options("/api/v1/search", headers={**preflight, "Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed


def test_a_peer_without_an_ip_address_is_not_local(
    tmp_path: Path, postgres_url: str, db: object
) -> None:
    """Only a socket address in keyless_networks is local; a name such as 'testclient' is not."""
    app = create_app(_settings(tmp_path, postgres_url))
    with _client(app, peer="testclient") as client:
        response = client.get("/api/v1/knowledge-bases")
    assert (response.status_code, response.json()["error_type"]) == (401, "unauthorized")


def test_revoking_the_last_key_does_not_reopen_keyless_mode(
    tmp_path: Path, postgres_url: str, db: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(_settings(tmp_path, postgres_url))
    with _client(app) as client:
        assert client.get("/api/v1/keys").status_code == 200  # out of the box: keyless
        made = client.post("/api/v1/keys", json={"admin": True, "name": "only"})
        assert made.status_code == 201
        admin = _bearer(made.json()["token"])
        assert client.get("/api/v1/keys").status_code == 401  # a key exists: keyless is over
        with caplog.at_level("WARNING", logger="services.common.api_keys"):
            revoked = client.delete(f"/api/v1/keys/{made.json()['id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert "zhiku keys create --admin" in caplog.text
        after = client.get("/api/v1/keys")
        assert (after.status_code, after.json()["error_type"]) == (401, "unauthorized")
        assert "zhiku keys create --admin" in after.json()["error"]
    # A restart does not reopen it either; only an explicit ZHIKU_KEYLESS=true does.
    with _client(create_app(_settings(tmp_path, postgres_url))) as client:
        assert client.get("/api/v1/keys").status_code == 401
    with _client(create_app(_settings(tmp_path, postgres_url, keyless=True))) as client:
        assert client.get("/api/v1/keys").status_code == 200


def test_keyless_mode_can_be_switched_off(tmp_path: Path, postgres_url: str, db: object) -> None:
    app = create_app(_settings(tmp_path, postgres_url, keyless=False))
    with _client(app) as client:
        response = client.get("/api/v1/knowledge-bases")
        assert (response.status_code, response.json()["error_type"]) == (401, "unauthorized")
        assert "zhiku keys create --admin" in response.json()["error"]


def test_unknown_host_headers_are_refused(tmp_path: Path, postgres_url: str, db: object) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    app = create_app(_settings(tmp_path, postgres_url))
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        with _client(app, host=host) as client:
            assert client.get("/api/v1/knowledge-bases").status_code == 200, host
    with _client(app, host="evil.example:8000") as client:
        assert client.get("/api/v1/knowledge-bases").status_code == 400
        assert client.get("/healthz").status_code == 400
    named = create_app(_settings(tmp_path, postgres_url, allowed_hosts=["zhiku.example"]))
    with _client(named, host="zhiku.example") as client:
        assert client.get("/healthz").status_code == 200
    with _client(named, host="localhost:8000") as client:
        assert client.get("/healthz").status_code == 400
    anything = create_app(_settings(tmp_path, postgres_url, allowed_hosts=["*"]))
    with _client(anything, host="evil.example") as client:
        assert client.get("/healthz").status_code == 200


def test_cross_site_writes_are_refused(tmp_path: Path, postgres_url: str, db: object) -> None:
    """A form on another site needs no preflight: its Origin header is what gives it away."""
    allowed = "https://app.example"
    settings = _settings(tmp_path, postgres_url, cors_origins=[allowed])
    with _client(create_app(settings)) as client:
        evil = {"Origin": "https://evil.example"}
        form = client.post(
            "/api/v1/knowledge-bases/kb/documents",
            files={"files": ("a.txt", b"x", "text/plain")},
            headers=evil,
        )
        assert (form.status_code, form.json()["error_type"]) == (403, "forbidden_origin")
        for method in ("POST", "PATCH", "PUT", "DELETE"):
            refused = client.request(method, "/api/v1/keys", json={"admin": True}, headers=evil)
            assert (method, refused.status_code) == (method, 403)
        assert (
            client.request("POST", "/api/v1/keys", json={}, headers={"Origin": "null"}).status_code
            == 403
        )
        assert client.get("/api/v1/keys", headers=evil).status_code == 200  # reads: CORS's job
        same = client.post(
            "/api/v1/keys", json={"admin": True}, headers={"Origin": "http://127.0.0.1:8000"}
        )
        assert same.status_code == 201
        listed = client.post(
            "/api/v1/keys",
            json={"admin": True},
            headers={"Origin": allowed, **_bearer(same.json()["token"])},
        )
        assert listed.status_code == 201
        no_origin = client.post(
            "/api/v1/keys", json={"admin": True}, headers=_bearer(same.json()["token"])
        )
        assert no_origin.status_code == 201
