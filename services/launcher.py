"""Start the whole suite as local processes; Ctrl-C stops every one of them.

``python -m services.launcher`` is what ``make run`` calls. The tests start the same processes
through :func:`suite_commands`, so a laptop run and the end-to-end tests share one definition.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.common import api_keys
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.logging import configure_logging, redact_url
from services.common.settings import Settings
from services.common.tasks import ingest_queue, llm_queue

logger = logging.getLogger("zhiku.launcher")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(module: str, queue: str, name: str) -> list[str]:
    """A solo-pool Celery worker: one task at a time, its model loaded once in this process."""
    node = f"{name}-{os.getpid()}@%h"
    args = f"-A {module} worker -Q {queue} --pool solo -c 1 -n {node} --loglevel INFO"
    return [sys.executable, "-m", "celery", *args.split()]


def _uvicorn(factory: str, host: str, port: int) -> list[str]:
    args = f"{factory} --factory --host {host} --port {port} --log-level warning"
    return [sys.executable, "-m", "uvicorn", *args.split()]


def suite_commands(settings: Settings, frontend_port: int = 8501) -> dict[str, list[str]]:
    """The command line of each zhiku process."""
    retriever_port = httpx.URL(settings.retriever_url).port or 8001
    app = Path(__file__).parents[1] / "frontend" / "app.py"
    streamlit = (
        f"--server.port {frontend_port} --server.address 127.0.0.1 --server.headless true"
        " --browser.gatherUsageStats false --client.toolbarMode minimal"
        f" --server.maxUploadSize {max(1, round(settings.max_upload_mb))}"
    )
    return {
        "retriever": _uvicorn("retriever.app:create_app", "127.0.0.1", retriever_port),
        "gateway": _uvicorn(
            "services.gateway.app:create_app", settings.gateway_host, settings.gateway_port
        ),
        "ingestion": _worker("ingestion.worker", ingest_queue(settings), "ingestion"),
        **llm_worker_commands(settings),
        "frontend": [sys.executable, "-m", "streamlit", "run", str(app), *streamlit.split()],
    }


def llm_worker_commands(settings: Settings) -> dict[str, list[str]]:
    """settings.llm_workers workers on the one llm queue: llm_worker, llm_worker_2, ..."""
    return {
        "llm_worker" if n == 1 else f"llm_worker_{n}": _worker(
            "llm_worker.worker", llm_queue(settings), "llm" if n == 1 else f"llm{n}"
        )
        for n in range(1, settings.llm_workers + 1)
    }


def start(
    commands: dict[str, list[str]], env: dict[str, str], log_dir: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """Each process in its own process group, its output in log_dir/<name>.log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name, cmd in commands.items():
        log = (log_dir / f"{name}.log").open("ab")
        procs[name] = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return procs


def stop(procs: dict[str, subprocess.Popen[bytes]], timeout_s: float = 15.0) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Wait for url to answer 200, failing early when a process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n, p in procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"process(es) exited during start: {', '.join(dead)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")


def _check_exposure(settings: Settings) -> None:
    """Refuse a network-wide gateway with no API keys before starting anything."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            count = api_keys.active_count(session)
            keyless = api_keys.keyless_allowed(session, settings.keyless, settings.gateway_host)
    finally:
        engine.dispose()
    problem = api_keys.exposure_problem(settings.gateway_host, count)
    if problem:
        sys.exit(f"zhiku: {problem}")
    if keyless:
        print("keyless mode: callers on this machine are admins without a key ('zhiku keys")
        print("  create --admin' adds one and ends keyless mode for good; see README, Security)")
    elif not count:
        print(f"no active API key: the API answers 401 to everyone; {api_keys.CREATE_HINT}")


def internal_token(settings: Settings) -> str:
    """The retriever's shared secret: ZHIKU_INTERNAL_TOKEN, or a fresh one for this run."""
    if settings.internal_token is not None:
        return settings.internal_token.get_secret_value()
    return secrets.token_urlsafe(32)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every zhiku process locally.")
    parser.add_argument("--frontend-port", type=int, default=8501)
    parser.add_argument("--no-frontend", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    configure_logging(settings.log_level)
    settings.ensure_dirs()
    upgrade_database(settings.sqlalchemy_url)
    _check_exposure(settings)
    commands = suite_commands(settings, args.frontend_port)
    if args.no_frontend:
        commands.pop("frontend")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ZHIKU_GATEWAY_URL": f"http://127.0.0.1:{settings.gateway_port}",
        # Every process gets the same secret, so only they can call the retriever.
        "ZHIKU_INTERNAL_TOKEN": internal_token(settings),
    }
    log_dir = settings.data_dir / "logs"
    procs = start(commands, env, log_dir)
    gateway = f"http://{settings.gateway_host}:{settings.gateway_port}"
    try:
        wait_ready(f"{gateway}/readyz", procs, timeout_s=300)
        queue = (
            f"Redis at {redact_url(settings.redis_url)}"
            if settings.redis_url
            else f"embedded queue in {settings.broker_dir}"
        )
        print(f"zhiku is up ({queue}); logs in {log_dir}/")
        print(f"  gateway   {gateway}  (/healthz, /readyz, API docs at {gateway}/docs)")
        if "frontend" in procs:
            print(f"  web chat  http://127.0.0.1:{args.frontend_port}")
        print("Press Ctrl-C to stop every process.")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        dead = [n for n, p in procs.items() if p.poll() is not None]
        logger.error("stopping: %s exited; see %s", ", ".join(dead), log_dir)
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs)
        print("zhiku stopped.")


if __name__ == "__main__":
    main()
