"""Start the whole zhiku suite for a benchmark: embedded SQLite and queue, free ports."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.common.db import upgrade_database
from services.common.settings import Settings
from services.launcher import free_port, start, stop, suite_commands, wait_ready

REPO = Path(__file__).resolve().parents[1]


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
