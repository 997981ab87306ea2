"""Token streams on the real Redis and on the database: ids, order, and resuming after a timeout."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from services.common.db import make_engine, make_sessionmaker
from services.common.errors import GenerationTimeoutError
from services.common.generation_schemas import StreamEvent
from services.common.models import Base, StreamEventRow
from services.common.streams import RedisTokenStream, SqlTokenStream, TokenStream

pytestmark = pytest.mark.integration
HOUR = timedelta(hours=1)


@pytest.fixture(params=["redis", "sql"])
def stream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenStream]:
    if request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        yield RedisTokenStream(client)
        client.close()
        return
    engine = make_engine(f"sqlite:///{tmp_path / 'zhiku.db'}")
    Base.metadata.create_all(engine)
    yield SqlTokenStream(make_sessionmaker(engine), poll_s=0.01)
    engine.dispose()


def _token(text: str) -> StreamEvent:
    return StreamEvent(kind="token", text=text)


def test_events_come_in_order_with_their_ids(stream: TokenStream) -> None:
    stream_id = uuid.uuid4().hex
    for text in ("知", "库"):
        stream.publish(stream_id, _token(text))
    stream.publish(stream_id, StreamEvent(kind="end", usage={"completion_tokens": 2}))
    events = list(stream.read(stream_id, timeout_s=5))
    assert [(e.kind, e.text) for e in events] == [("token", "知"), ("token", "库"), ("end", "")]
    assert events[-1].usage == {"completion_tokens": 2}
    assert all(e.id for e in events) and len({e.id for e in events}) == 3
    # The id belongs to the reader: it is not part of what the worker published.
    assert "id" not in events[0].model_dump()


def test_a_read_after_a_timeout_resumes_behind_the_last_event(stream: TokenStream) -> None:
    stream_id = uuid.uuid4().hex
    stream.publish(stream_id, _token("a"))
    stream.publish(stream_id, _token("b"))
    relayed: list[StreamEvent] = []
    with pytest.raises(GenerationTimeoutError):
        for event in stream.read(stream_id, timeout_s=0.3):
            relayed.append(event)
    assert [e.text for e in relayed] == ["a", "b"]
    stream.publish(stream_id, _token("c"))
    stream.publish(stream_id, StreamEvent(kind="end"))
    rest = list(stream.read(stream_id, timeout_s=5, after=relayed[-1].id))
    assert [(e.kind, e.text) for e in rest] == [("token", "c"), ("end", "")]


def test_a_read_after_an_id_starts_behind_it(stream: TokenStream) -> None:
    stream_id = uuid.uuid4().hex
    for text in "abc":
        stream.publish(stream_id, _token(text))
    first = stream.read(stream_id, timeout_s=5)
    ids = [next(first).id for _ in range(3)]
    stream.publish(stream_id, StreamEvent(kind="error", text="boom", error_type="internal_error"))
    rest = list(stream.read(stream_id, timeout_s=5, after=ids[0]))
    assert [e.text for e in rest] == ["b", "c", "boom"]
    assert [e.id for e in rest[:2]] == ids[1:]


def test_a_cancelled_stream_is_seen_cancelled_and_others_are_not(stream: TokenStream) -> None:
    stream_id, other = uuid.uuid4().hex, uuid.uuid4().hex
    stream.publish(stream_id, _token("a"))
    assert not stream.cancelled(stream_id)
    stream.cancel(stream_id)
    stream.cancel(stream_id)  # twice is harmless
    assert stream.cancelled(stream_id)
    assert not stream.cancelled(other)


def test_database_rows_nobody_read_to_the_end_are_swept(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'zhiku.db'}")
    Base.metadata.create_all(engine)
    factory = make_sessionmaker(engine)
    left, cancelled, live = (uuid.uuid4().hex for _ in range(3))
    writer = SqlTokenStream(factory, poll_s=0.01)
    writer.publish(left, _token("半"))  # a reader went away before the end
    writer.cancel(cancelled)  # a reader that gave up leaves its marker
    with factory.begin() as session:  # ...both an hour ago
        session.execute(update(StreamEventRow).values(created_at=datetime.now(UTC) - HOUR))
    # A new writer sweeps as it first publishes: the old rows go, the fresh one stays.
    SqlTokenStream(factory, poll_s=0.01).publish(live, _token("新"))
    with factory() as session:
        kept = session.scalars(select(StreamEventRow.stream_id)).all()
    assert kept == [live]
    assert not writer.cancelled(cancelled)
    assert writer.sweep() == 0  # nothing old is left
    engine.dispose()
