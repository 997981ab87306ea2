"""The backend chosen from Settings: Redis heartbeats on one client, embedded stand-ins."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

from services.common import heartbeat
from services.common.backend import EmbeddedBackend, RedisBackend, create_backend
from services.common.rate_limits import LocalLimiter, RedisLimiter
from services.common.settings import Settings
from services.common.slots import LocalSlotBackend, RedisSlotBackend
from services.common.streams import RedisTokenStream, SqlTokenStream
from services.common.tasks import create_celery

pytestmark = pytest.mark.integration


def test_redis_backend_shares_one_client(redis_url: str) -> None:
    backend = create_backend(Settings(redis_url=redis_url, queue_prefix="zhiku-b"))
    assert isinstance(backend, RedisBackend)
    assert backend.broker().url == redis_url
    assert isinstance(backend.token_stream, RedisTokenStream)
    assert backend.token_stream is backend.token_stream
    assert isinstance(backend.slot_store(), RedisSlotBackend)
    assert isinstance(backend.limiter(5), RedisLimiter)
    assert backend.probe() == "ok"


def test_a_job_running_past_an_hour_is_not_handed_to_a_second_worker(redis_url: str) -> None:
    settings = Settings(
        redis_url=redis_url, ingest_soft_time_limit_s=7000, ingest_time_limit_s=7200
    )
    app = create_celery(create_backend(settings))
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    # Acks come late: the message must stay with its worker until the job's hard limit.
    assert visibility > settings.ingest_time_limit_s
    assert (
        create_backend(Settings(redis_url=redis_url))
        .broker()
        .transport_options["visibility_timeout"]
        > Settings().ingest_time_limit_s
    )


def test_embedded_backend_without_redis(tmp_path: Path) -> None:
    settings = Settings(redis_url=None, data_dir=tmp_path)
    backend = create_backend(settings)
    assert isinstance(backend, EmbeddedBackend)
    assert backend.broker().url.startswith("zhikufs://")
    assert backend.probe() == "unavailable: queue folder missing"
    settings.ensure_dirs()
    assert backend.probe() == "ok"
    assert isinstance(backend.token_stream, SqlTokenStream)
    assert isinstance(backend.slot_store(), LocalSlotBackend)
    assert isinstance(backend.limiter(5), LocalLimiter)


def test_an_unreachable_redis_is_reported_by_the_probe() -> None:
    backend = create_backend(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert backend.probe().startswith("unavailable: ")


def test_redis_beats_live_in_one_hash_and_expire(redis_url: str) -> None:
    prefix = f"zhiku-beats-{uuid.uuid4().hex[:8]}"
    backend = create_backend(Settings(redis_url=redis_url, queue_prefix=prefix))
    key = f"{prefix}:heartbeat:llm"
    client = redis.Redis.from_url(redis_url)
    try:
        assert backend.heartbeats.alive("llm") == []
        backend.heartbeats.publish("llm", {"backend": "llama.cpp"})
        backend.heartbeats.publish("llm", {"backend": "llama.cpp", "gpu_layers": 0})
        [beat] = backend.heartbeats.alive("llm")
        assert (beat["worker"], beat["gpu_layers"]) == (heartbeat.worker_name(), 0)
        assert client.type(key) == b"hash" and client.ttl(key) > 0
        # What a worker that died leaves behind: a beat whose expiry has passed.
        now = int(client.time()[0])
        client.hset(key, "gone:1", f"{now - 1} " + json.dumps({"worker": "gone:1"}))
        assert [b["worker"] for b in backend.heartbeats.alive("llm")] == [heartbeat.worker_name()]
        assert client.hexists(key, "gone:1") == 0
        assert backend.heartbeats.alive("ingestion") == []
    finally:
        client.delete(key)


def test_file_beats_of_live_workers_only(tmp_path: Path) -> None:
    beats = create_backend(Settings(redis_url=None, data_dir=tmp_path)).heartbeats
    beats.publish("llm", {"backend": "llama.cpp"})
    stale = tmp_path / "heartbeats" / "llm" / "gone:1.json"
    stale.write_text(json.dumps({"worker": "gone:1", "at": 0}))
    assert [b["worker"] for b in beats.alive("llm")] == [heartbeat.worker_name()]
    assert beats.alive("ingestion") == []
