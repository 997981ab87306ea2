"""Workers say they are alive, and what they run, so the gateway's /readyz can tell.

Each beat expires after ``TTL_S``: a worker that died drops out on its own. With Redis the beats
of one role are the fields of one hash (no keyspace scan to list them), each prefixed with its
expiry on Redis's clock; embedded, they are small JSON files in the data directory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import redis

logger = logging.getLogger(__name__)

TTL_S = 30.0
INTERVAL_S = 10.0

# Store the beat behind its expiry; the whole hash expires with its newest beat.
_PUBLISH = """
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[2])) .. ' ' .. ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""
# The beats not yet expired; expired ones are dropped on the way.
_ALIVE = """
local now = tonumber(redis.call('TIME')[1])
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  local value = fields[i + 1]
  local space = string.find(value, ' ', 1, true)
  if space and tonumber(string.sub(value, 1, space - 1)) > now then
    live[#live + 1] = string.sub(value, space + 1)
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return live
"""


def worker_name() -> str:
    """How this process is named in its beats: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeats(Protocol):
    def publish(self, role: str, info: dict[str, Any]) -> None:
        """Record one beat of this process under ``role`` (e.g. 'llm')."""

    def alive(self, role: str) -> list[dict[str, Any]]:
        """The latest beat of every live worker of ``role``."""


def _beat(info: dict[str, Any]) -> str:
    return json.dumps({**info, "worker": worker_name(), "at": time.time()})


class RedisHeartbeats:
    """Beats in one Redis hash per role, on a client shared with the rest of the process."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._prefix = prefix
        self._publish = client.register_script(_PUBLISH)
        self._alive = client.register_script(_ALIVE)

    def _key(self, role: str) -> str:
        return f"{self._prefix}:heartbeat:{role}"

    def publish(self, role: str, info: dict[str, Any]) -> None:
        self._publish(keys=[self._key(role)], args=[worker_name(), int(TTL_S), _beat(info)])

    def alive(self, role: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self._alive(keys=[self._key(role)])]


class FileHeartbeats:
    """Beats as one JSON file per worker under ``folder/<role>`` (the embedded shape)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def publish(self, role: str, info: dict[str, Any]) -> None:
        folder = self._folder / role
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{worker_name()}.tmp"
        tmp.write_text(_beat(info))
        os.replace(tmp, folder / f"{worker_name()}.json")

    def alive(self, role: str) -> list[dict[str, Any]]:
        folder = self._folder / role
        now, beats = time.time(), []
        for path in folder.glob("*.json") if folder.is_dir() else []:
            try:
                beat = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if now - float(beat.get("at", 0)) <= TTL_S:
                beats.append(beat)
        return beats


def start_beating(
    heartbeats: Heartbeats, role: str, info: dict[str, Any] | Callable[[], dict[str, Any]]
) -> threading.Thread:
    """Beat every INTERVAL_S in a daemon thread; a callable ``info`` is asked anew each beat."""

    def run() -> None:
        while True:
            try:
                heartbeats.publish(role, info() if callable(info) else info)
            except (redis.RedisError, OSError) as exc:
                logger.warning("heartbeat not recorded: %s", exc)
            time.sleep(INTERVAL_S)

    thread = threading.Thread(target=run, name=f"heartbeat-{role}", daemon=True)
    thread.start()
    return thread
