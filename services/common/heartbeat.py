"""Workers say they are alive, and what they run, so the gateway's /readyz can tell.

Each beat expires after ``TTL_S``: a worker that died drops out on its own. Redis keys when
ZHIKU_REDIS_URL is set, else small JSON files in the data directory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

import redis

from services.common.settings import Settings

logger = logging.getLogger(__name__)

TTL_S = 30.0
INTERVAL_S = 10.0


def _key(settings: Settings, role: str) -> str:
    return f"{settings.queue_prefix}:heartbeat:{role}"


def publish(settings: Settings, role: str, info: dict[str, Any]) -> None:
    """Record one beat of this process under ``role`` (e.g. 'llm')."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    beat = json.dumps({**info, "worker": worker, "at": time.time()})
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        client.set(f"{_key(settings, role)}:{worker}", beat, ex=int(TTL_S))
        return
    folder = settings.data_dir / "heartbeats" / role
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{worker}.tmp"
    tmp.write_text(beat)
    os.replace(tmp, folder / f"{worker}.json")


def alive(settings: Settings, role: str) -> list[dict[str, Any]]:
    """The latest beat of every live worker of ``role``."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
        keys = list(client.scan_iter(f"{_key(settings, role)}:*", count=100))
        return [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []
    folder = settings.data_dir / "heartbeats" / role
    now, beats = time.time(), []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            beat = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if now - float(beat.get("at", 0)) <= TTL_S:
            beats.append(beat)
    return beats


def start_beating(settings: Settings, role: str, info: dict[str, Any]) -> threading.Thread:
    """Beat every INTERVAL_S in a daemon thread for the life of the process."""

    def run() -> None:
        while True:
            try:
                publish(settings, role, info)
            except (redis.RedisError, OSError) as exc:
                logger.warning("heartbeat not recorded: %s", exc)
            time.sleep(INTERVAL_S)

    thread = threading.Thread(target=run, name=f"heartbeat-{role}", daemon=True)
    thread.start()
    return thread
