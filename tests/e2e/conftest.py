"""The whole suite as real processes: gateway, retriever, ingestion and llm workers, frontend."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from llm_worker.model_files import ensure_bundled
from services.common.db import upgrade_database
from services.common.schemas import ChunkHit, JobPublic, SearchResponse, UploadAccepted
from services.common.settings import Settings
from services.launcher import free_port, start, stop, suite_commands, wait_ready

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DATA = REPO / "tests" / "data"
FilePart = tuple[str, tuple[str, bytes, str]]


def wait_jobs(client: httpx.Client, ids: list[str], timeout_s: float = 240) -> list[JobPublic]:
    """The jobs once every one is done or failed; nothing may stay pending past timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = [JobPublic.model_validate(client.get(f"/api/v1/jobs/{i}").json()) for i in ids]
        if all(job.stage in ("done", "failed") for job in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"jobs still running after {timeout_s:.0f} s: nothing may stay pending")


def upload_and_wait(
    client: httpx.Client, kb: str, files: Sequence[FilePart], timeout_s: float = 240
) -> tuple[UploadAccepted, dict[str, JobPublic]]:
    """One upload (answered 202), and each accepted file's job once finished, by filename."""
    response = client.post(f"/api/v1/knowledge-bases/{kb}/documents", files=list(files))
    assert response.status_code == 202, response.text
    accepted = UploadAccepted.model_validate(response.json())
    jobs = wait_jobs(client, [job.id for job in accepted.jobs], timeout_s)
    return accepted, {job.filename: job for job in jobs}


def top_hit(client: httpx.Client, kb: str, query: str, top_k: int) -> ChunkHit:
    """The best hit of POST /api/v1/search, which must answer 200 with at least one hit."""
    body = {"knowledge_base": kb, "query": query, "top_k": top_k}
    response = client.post("/api/v1/search", json=body)
    assert response.status_code == 200, response.text
    return SearchResponse.model_validate(response.json()).hits[0]


@dataclass
class RunningSuite:
    gateway_url: str
    frontend_url: str
    data_dir: Path
    client: httpx.Client
    queue_prefix: str = "zhiku"

    def log(self, name: str) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="session")
def small_model() -> Path:
    """The 0.5B test model, joined once under data/models."""
    return ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")


def _start_suite(
    data_dir: Path,
    small_model: Path,
    database_url: str | None,
    redis_url: str | None,
    extra_env: dict[str, str] | None = None,
) -> tuple[RunningSuite, dict[str, subprocess.Popen[bytes]]]:
    """Every zhiku process with the small model on free ports, ready to serve."""
    ports = {name: free_port() for name in ("gateway", "retriever", "frontend")}
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=f"zhiku-test-{uuid.uuid4().hex[:8]}",  # other suites may share the Redis
        retriever_url=f"http://127.0.0.1:{ports['retriever']}",
        gateway_port=ports["gateway"],
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ZHIKU_DATA_DIR": str(data_dir),
        "ZHIKU_QUEUE_PREFIX": settings.queue_prefix,
        "ZHIKU_RETRIEVER_URL": settings.retriever_url,
        "ZHIKU_GATEWAY_PORT": str(ports["gateway"]),
        "ZHIKU_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        "ZHIKU_LLM__MODEL_PATH": str(small_model),
        "ZHIKU_LLM__MAX_TOKENS": "160",
        # The 0.5B test model needs the passage budget the default 1.5B model had before 400:
        # given the right sentence in 277 tokens of passages it says "not found" (at 600 not).
        "ZHIKU_LLM__CONTEXT_TOKENS": "600",
        "ZHIKU_MAX_UPLOAD_MB": "2",
        # What `make run` does: one shared secret for the internal retriever API per run.
        "ZHIKU_INTERNAL_TOKEN": secrets.token_urlsafe(32),
        **(extra_env or {}),
    }
    for name, value in (("ZHIKU_DATABASE_URL", database_url), ("ZHIKU_REDIS_URL", redis_url)):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    upgrade_database(settings.sqlalchemy_url)
    procs = start(suite_commands(settings, ports["frontend"]), env, data_dir / "logs")
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    suite = RunningSuite(
        gateway,
        f"http://127.0.0.1:{ports['frontend']}",
        data_dir,
        httpx.Client(base_url=gateway, timeout=300),
        settings.queue_prefix,
    )
    try:
        wait_ready(f"{gateway}/readyz", procs, timeout_s=240)
        wait_ready(suite.frontend_url, procs, timeout_s=120)
    except BaseException:
        _stop_suite(suite, procs, "failed-start")
        raise
    return suite, procs


def _stop_suite(suite: RunningSuite, procs: dict[str, subprocess.Popen[bytes]], tag: str) -> None:
    suite.client.close()
    stop(procs)
    ARTIFACTS.mkdir(exist_ok=True)
    for log in (suite.data_dir / "logs").glob("*.log"):
        (ARTIFACTS / f"{tag}-{log.name}").write_bytes(log.read_bytes())


@contextmanager
def suite_running(
    tmp_path_factory: pytest.TempPathFactory,
    small_model: Path,
    tag: str,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Iterator[RunningSuite]:
    """A suite in a fresh data folder (embedded SQLite and queue unless URLs are given);
    stopped on exit, its logs kept under test-artifacts/ with ``tag``."""
    data_dir = tmp_path_factory.mktemp(f"{tag}-data")
    suite, procs = _start_suite(data_dir, small_model, database_url, redis_url)
    try:
        yield suite
    finally:
        _stop_suite(suite, procs, tag)


@pytest.fixture(scope="session")
def running_suite(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str, small_model: Path
) -> Iterator[RunningSuite]:
    """The deployed shape: Celery workers on Redis, PostgreSQL."""
    with suite_running(tmp_path_factory, small_model, "suite", postgres_url, redis_url) as suite:
        yield suite


@pytest.fixture(scope="session")
def embedded_suite(
    tmp_path_factory: pytest.TempPathFactory, small_model: Path
) -> Iterator[RunningSuite]:
    """What `make run` starts with no configuration: SQLite and the embedded queue."""
    with suite_running(tmp_path_factory, small_model, "embedded") as suite:
        yield suite


@dataclass
class KeyedSuite:
    """A suite with API keys: the admin key exists before start, so auth is on from the start."""

    suite: RunningSuite
    admin_key: str
    database_url: str


@pytest.fixture(scope="session")
def keyed_suite(
    tmp_path_factory: pytest.TempPathFactory, small_model: Path, redis_url: str
) -> Iterator[KeyedSuite]:
    """PostgreSQL (a database of its own), Redis, an admin key; the web app uses that key."""
    # Imported here: the other suites must not depend on the key module.
    from services.common import api_keys
    from services.common.db import make_engine, make_sessionmaker
    from tests.conftest import PG_ADMIN

    name = f"zhiku_keyed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    upgrade_database(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        admin = api_keys.create_key(session, api_keys.ApiKeyCreate(admin=True, name="e2e admin"))
    engine.dispose()
    env = {
        "ZHIKU_API_KEY": admin.token,
        "ZHIKU_GATEWAY_HOST": "127.0.0.1",
        "ZHIKU_PARSING__MAX_UNPACKED_MB": "20",
    }
    suite, procs = _start_suite(
        tmp_path_factory.mktemp("keyed-data"), small_model, url, redis_url, env
    )
    suite.client.headers["Authorization"] = f"Bearer {admin.token}"
    yield KeyedSuite(suite, admin.token, url)
    _stop_suite(suite, procs, "keyed")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
