"""Fixtures shared by every test: the real PostgreSQL and Redis on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PG_ADMIN = os.environ.get("ZHIKU_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("ZHIKU_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_TEST_DB = 15


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"zhiku_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis database; suites keep apart by queue prefix, so it is never flushed."""
    url = f"{REDIS_BASE}/{REDIS_TEST_DB}"
    redis.Redis.from_url(url).ping()
    return url
