"""Start the whole zhiku suite for a benchmark: embedded SQLite and queue, free ports."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from services.client import GatewayClient
from services.common.db import upgrade_database
from services.common.settings import Settings
from services.launcher import free_port, start, stop, suite_commands, wait_ready

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


@contextmanager
def running_suite(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Every process but the web app, on free ports; yields the gateway URL."""
    ports = {name: free_port() for name in ("gateway", "retriever")}
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ZHIKU_DATA_DIR": str(data_dir),
        "ZHIKU_RETRIEVER_URL": f"http://127.0.0.1:{ports['retriever']}",
        "ZHIKU_GATEWAY_PORT": str(ports["gateway"]),
        "ZHIKU_RATE_LIMIT_PER_MINUTE": "0",  # a benchmark is one client sending on purpose
        **(extra_env or {}),
    }
    for name in ("ZHIKU_DATABASE_URL", "ZHIKU_REDIS_URL"):
        if name not in (extra_env or {}):
            env.pop(name, None)  # by default the embedded shape: SQLite and the filesystem queue
    os.environ.update({k: v for k, v in env.items() if k.startswith("ZHIKU_")})
    settings = Settings()
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    commands = suite_commands(settings)
    commands.pop("frontend")
    procs: dict[str, subprocess.Popen[bytes]] = start(commands, env, data_dir / "logs")
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_ready(f"{gateway}/readyz", procs, timeout_s=600)
        yield gateway
    finally:
        stop(procs)


@dataclass
class SuiteProcesses:
    """Processes of one suite that a benchmark adds and removes one by one."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    frontend_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def add(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.procs.update(start({name: command}, {**self.env, **(env or {})}, self.log_dir))

    def remove(self, name: str) -> None:
        stop({name: self.procs.pop(name)})

    def commands(self, **changes: object) -> dict[str, list[str]]:
        """suite_commands for these settings, with ``changes`` (e.g. llm_workers=2)."""
        return suite_commands(self.settings.model_copy(update=changes), self.frontend_port)


@contextmanager
def suite_processes(
    data_dir: Path, extra_env: dict[str, str], names: tuple[str, ...]
) -> Iterator[tuple[SuiteProcesses, str]]:
    """The named processes of the suite on free ports, more added later; yields the gateway URL.

    ``extra_env`` holds ZHIKU_* settings (ZHIKU_REDIS_URL for Redis: a queue prefix of its own
    is chosen); the processes are stopped on exit, those added later included.
    """
    ports = {name: free_port() for name in ("gateway", "retriever", "frontend")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZHIKU_")},
        "HF_HUB_OFFLINE": "1",
        "ZHIKU_DATA_DIR": str(data_dir),
        "ZHIKU_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "ZHIKU_RETRIEVER_URL": f"http://127.0.0.1:{ports['retriever']}",
        "ZHIKU_GATEWAY_PORT": str(ports["gateway"]),
        "ZHIKU_GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        "ZHIKU_RATE_LIMIT_PER_MINUTE": "0",
        **extra_env,
    }
    with mock.patch.dict(os.environ, env, clear=True):
        settings = Settings()  # as the processes will read it
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    suite = SuiteProcesses(settings, env, data_dir / "logs", ports["frontend"])
    commands = suite.commands()
    for name in names:
        suite.add(name, commands[name])
    try:
        yield suite, env["ZHIKU_GATEWAY_URL"]
    finally:
        stop(suite.procs)


def ingest_test_files(gateway: str, kb: str, names: tuple[str, ...], create: bool = False) -> None:
    """Upload these files from tests/data into ``kb`` (created first if asked), until ingested."""
    with GatewayClient(gateway, timeout=600) as client:
        if create:
            client.create_knowledge_base(kb)
        accepted = client.upload(kb, [(name, (TEST_DATA / name).read_bytes()) for name in names])
        for _ in client.follow_jobs([job.id for job in accepted.jobs], interval_s=0.3):
            pass
