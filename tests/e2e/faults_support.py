"""Throw-away Redis and PostgreSQL servers, and a suite whose processes a test can kill.

The Redis and PostgreSQL on 127.0.0.1's usual ports are shared with other test runs, so the
outage tests stop only servers they started themselves, on free ports.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from services.launcher import free_port, start
from tests.e2e.conftest import RunningSuite, _start_suite, _stop_suite


def _wait(check: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except Exception:  # the server is still starting
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not up after {timeout_s:.0f} s")


class PrivateRedis:
    """A redis-server of our own on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = f"--port {self.port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no"
        self._proc = subprocess.Popen(
            ["bash", "-c", f"exec redis-server {args}"],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait(lambda: redis.Redis.from_url(self.url).ping(), "private Redis")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary folder, on a free port."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
        self.bin = Path(found[-1]).parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="zhiku-pg-"))
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/zhiku"
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
        initdb = ["-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
        subprocess.run(
            [*self._as_user, str(self.bin / "initdb"), "-E", "UTF8", *initdb],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = ["-p", str(self.port), "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1"]
        data = ["-D", str(self.dir / "data"), "-c", "fsync=off"]
        self._proc = subprocess.Popen(
            [*self._as_user, str(self.bin / "postgres"), *data, *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        _wait(lambda: psycopg.connect(admin).close() is None, "private PostgreSQL")
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'zhiku'").fetchone():
                conn.execute("CREATE DATABASE zhiku")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGINT)  # fast shutdown: clients are cut off
            self._proc.wait(30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of one statement, run straight on the database."""
        url = self.url.replace("+psycopg", "")
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql, params)  # type: ignore[arg-type]
            return list(cur.fetchall()) if cur.description else []


@dataclass
class FaultSuite:
    """A running suite on private Redis and PostgreSQL whose processes can be killed."""

    suite: RunningSuite
    procs: dict[str, subprocess.Popen[bytes]]
    redis: PrivateRedis
    postgres: PrivatePostgres
    env: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> httpx.Client:
        return self.suite.client

    def kill(self, name: str) -> None:
        """SIGKILL one process (its whole process group), as a crash or an OOM kill would."""
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait()

    def restart(self, name: str) -> None:
        """Start a killed process again with the same command line and environment."""
        args = self.procs[name].args
        assert isinstance(args, list)
        self.procs.update(start({name: args}, self.env, self.suite.data_dir / "logs"))

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Wait for the gateway's /readyz to answer 200 again."""
        _wait(
            lambda: self.client.get("/readyz", timeout=10).status_code == 200,
            "the suite's /readyz",
            timeout_s,
        )

    def retriever_url(self) -> str:
        return self.env["ZHIKU_RETRIEVER_URL"]


def _environ(pid: int) -> dict[str, str]:
    """The environment a running process was started with."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode().split("=", 1) for item in raw if b"=" in item)
    return {key: value for key, value in pairs}


@pytest.fixture(scope="session")
def fault_suite(
    tmp_path_factory: pytest.TempPathFactory, small_model: Path
) -> Iterator[FaultSuite]:
    """Every zhiku process on a Redis and a PostgreSQL that only these tests use."""
    private_redis, private_pg = PrivateRedis(), PrivatePostgres()
    private_redis.start()
    private_pg.start()
    try:
        suite, procs = _start_suite(
            tmp_path_factory.mktemp("fault-data"), small_model, private_pg.url, private_redis.url
        )
    except BaseException:
        private_redis.stop()
        private_pg.remove()
        raise
    handle = FaultSuite(suite, procs, private_redis, private_pg, _environ(procs["gateway"].pid))
    yield handle
    _stop_suite(suite, handle.procs, "faults")
    private_redis.stop()
    private_pg.remove()
