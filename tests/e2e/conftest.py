"""The whole suite as real processes: gateway, retriever, ingestion and llm workers, frontend."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from llm_worker.model_files import ensure_bundled
from services.common.db import upgrade_database
from services.common.settings import Settings
from services.launcher import start, stop, suite_commands, wait_ready

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningSuite:
    gateway_url: str
    frontend_url: str
    data_dir: Path
    client: httpx.Client

    def log(self, name: str) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="session")
def small_model() -> Path:
    """The 0.5B test model, joined once under data/models."""
    return ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")


@pytest.fixture(scope="session")
def running_suite(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str, small_model: Path
) -> Iterator[RunningSuite]:
    """Every zhiku process on Redis and PostgreSQL, with the small model, on free ports."""
    data_dir = tmp_path_factory.mktemp("suite-data")
    ports = {name: free_port() for name in ("gateway", "retriever", "frontend")}
    prefix = f"zhiku-test-{uuid.uuid4().hex[:8]}"  # queues of their own: other suites may run
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ZHIKU_DATA_DIR": str(data_dir),
        "ZHIKU_DATABASE_URL": postgres_url,
        "ZHIKU_REDIS_URL": redis_url,
        "ZHIKU_QUEUE_PREFIX": prefix,
        "ZHIKU_RETRIEVER_URL": f"http://127.0.0.1:{ports['retriever']}",
        "ZHIKU_GATEWAY_PORT": str(ports["gateway"]),
        "ZHIKU_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        "ZHIKU_LLM__MODEL_PATH": str(small_model),
        "ZHIKU_LLM__MAX_TOKENS": "160",
        "ZHIKU_LLM__N_CTX": "4096",
        "ZHIKU_MAX_UPLOAD_MB": "2",
    }
    settings = Settings(
        data_dir=data_dir,
        database_url=postgres_url,
        redis_url=redis_url,
        queue_prefix=prefix,
        retriever_url=env["ZHIKU_RETRIEVER_URL"],
        gateway_port=ports["gateway"],
    )
    upgrade_database(settings.sqlalchemy_url)
    procs = start(suite_commands(settings, ports["frontend"]), env, data_dir / "logs")
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    suite = RunningSuite(
        gateway,
        f"http://127.0.0.1:{ports['frontend']}",
        data_dir,
        httpx.Client(base_url=gateway, timeout=300),
    )
    try:
        wait_ready(f"{gateway}/readyz", procs, timeout_s=240)
        wait_ready(suite.frontend_url, procs, timeout_s=120)
        yield suite
    finally:
        suite.client.close()
        stop(procs)
        ARTIFACTS.mkdir(exist_ok=True)
        for log in (data_dir / "logs").glob("*.log"):
            (ARTIFACTS / f"suite-{log.name}").write_bytes(log.read_bytes())
