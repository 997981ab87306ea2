"""Redis and database URLs are logged without their password."""

from __future__ import annotations

import logging

import pytest

from services.common.backend import RedisBackend
from services.common.logging import redact_url
from services.common.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:s3cret@cache:6380/1", "rediss://app:***@cache:6380/1"),
        ("redis://cache:6379/0?password=s3cret&db=2", "redis://cache:6379/0?password=***&db=2"),
        (
            "postgresql+psycopg://zhiku:p%40ss@db:5432/zhiku",
            "postgresql+psycopg://zhiku:***@db:5432/zhiku",
        ),
        ("postgresql://zhiku:a@b@db/zhiku", "postgresql://zhiku:***@db/zhiku"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://user@cache:6379/0", "redis://user@cache:6379/0"),
        ("sqlite:////var/lib/zhiku/zhiku.db", "sqlite:////var/lib/zhiku/zhiku.db"),
    ],
)
def test_redact_url_masks_the_password_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redis_backend_description_hides_the_password() -> None:
    backend = RedisBackend(Settings(), "redis://:s3cret@127.0.0.1:6379/0")
    assert "s3cret" not in backend.description
    assert "127.0.0.1:6379" in backend.description


def test_gateway_start_up_line_hides_both_passwords(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from services.gateway import app as gateway_app

    settings = Settings(database_url="postgresql+psycopg://zhiku:dbs3cret@db:5432/zhiku")
    with caplog.at_level(logging.INFO):
        gateway_app.log_ready(settings, RedisBackend(settings, "redis://:s3cret@cache:6379/0"))
    assert "gateway ready" in caplog.text
    assert "s3cret" not in caplog.text and "dbs3cret" not in caplog.text
    assert "db:5432/zhiku" in caplog.text
