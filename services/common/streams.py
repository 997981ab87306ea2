"""Token streams from the llm worker to the gateway: Redis Streams, or the database (embedded).

Every event read carries its id: a read given ``after=`` that id continues behind it, so a
reader that stopped (a timeout) resumes where it was instead of from the first event. A reader
that gives up for good cancels the stream: the worker asks ``cancelled()`` as it goes and stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.errors import GenerationTimeoutError
from services.common.generation_schemas import StreamEvent
from services.common.models import StreamEventRow

STREAM_TTL_S = 600
# How often a database stream's writer sweeps rows older than STREAM_TTL_S.
SWEEP_EVERY_S = 60.0


class TokenStream(Protocol):
    def publish(self, stream_id: str, event: StreamEvent) -> None: ...

    def read(
        self, stream_id: str, timeout_s: float, after: str | None = None
    ) -> Iterator[StreamEvent]:
        """Events behind ``after`` (else from the first) in order until the end or an error.

        Raises GenerationTimeoutError when the stream stays silent for ``timeout_s``.
        """
        ...

    def cancel(self, stream_id: str) -> None:
        """Nobody reads this stream any more: ask its worker to stop."""

    def cancelled(self, stream_id: str) -> bool:
        """Whether the stream's reader cancelled it."""


class RedisTokenStream:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @staticmethod
    def _key(stream_id: str) -> str:
        return f"zhiku:stream:{stream_id}"

    def cancel(self, stream_id: str) -> None:
        # The flag outlives any generation (the worker's is bounded by the generation timeout).
        self._redis.set(f"{self._key(stream_id)}:cancel", 1, ex=STREAM_TTL_S)

    def cancelled(self, stream_id: str) -> bool:
        return bool(self._redis.exists(f"{self._key(stream_id)}:cancel"))

    def publish(self, stream_id: str, event: StreamEvent) -> None:
        key = self._key(stream_id)
        pipe = self._redis.pipeline()
        pipe.xadd(key, {"e": event.model_dump_json()})
        pipe.expire(key, STREAM_TTL_S)
        pipe.execute()

    def read(
        self, stream_id: str, timeout_s: float, after: str | None = None
    ) -> Iterator[StreamEvent]:
        key, last_id = self._key(stream_id), after or "0-0"
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise GenerationTimeoutError(f"no answer from the llm worker in {timeout_s:.0f} s")
            reply: Any = self._redis.xread({key: last_id}, block=min(remaining_ms, 1000), count=100)
            for _key, entries in reply or []:
                for entry_id, fields in entries:
                    last_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    event = StreamEvent.model_validate_json(fields[b"e"])
                    event.id = last_id
                    yield event
                    if event.kind != "token":
                        self._redis.delete(key)
                        return
                deadline = time.monotonic() + timeout_s


class SqlTokenStream:
    """The embedded default: events as rows, polled every 20 ms (SQLite WAL allows it)."""

    def __init__(self, factory: sessionmaker[Session], poll_s: float = 0.02) -> None:
        self._factory = factory
        self._poll_s = poll_s
        self._swept_at = 0.0  # monotonic time of this writer's last sweep

    def publish(self, stream_id: str, event: StreamEvent) -> None:
        with self._factory.begin() as session:
            session.add(StreamEventRow(stream_id=stream_id, payload=event.model_dump_json()))
        if time.monotonic() - self._swept_at > SWEEP_EVERY_S:
            self.sweep()

    def sweep(self, older_than_s: float = STREAM_TTL_S) -> int:
        """Drop events and cancel markers older than ``older_than_s`` (as Redis expires its
        streams): what a reader that went away left behind. Returns how many rows went."""
        self._swept_at = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        with self._factory.begin() as session:
            gone = session.execute(delete(StreamEventRow).where(StreamEventRow.created_at < cutoff))
        return int(getattr(gone, "rowcount", 0) or 0)

    def cancel(self, stream_id: str) -> None:
        """A marker row under the stream's own id plus ``:cancel``; the unread events go."""
        with self._factory.begin() as session:
            session.execute(delete(StreamEventRow).where(StreamEventRow.stream_id == stream_id))
            session.add(StreamEventRow(stream_id=_cancel_id(stream_id), payload="{}"))

    def cancelled(self, stream_id: str) -> bool:
        with self._factory() as session:
            marker = session.scalar(
                select(StreamEventRow.id)
                .where(StreamEventRow.stream_id == _cancel_id(stream_id))
                .limit(1)
            )
        return marker is not None

    def read(
        self, stream_id: str, timeout_s: float, after: str | None = None
    ) -> Iterator[StreamEvent]:
        last_id = int(after) if after else 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._factory() as session:
                rows = session.execute(
                    select(StreamEventRow.id, StreamEventRow.payload)
                    .where(StreamEventRow.stream_id == stream_id, StreamEventRow.id > last_id)
                    .order_by(StreamEventRow.id)
                ).all()
            if not rows:
                time.sleep(self._poll_s)
                continue
            for row_id, payload in rows:
                last_id = row_id
                event = StreamEvent.model_validate_json(payload)
                event.id = str(row_id)
                yield event
                if event.kind != "token":
                    with self._factory.begin() as session:
                        session.execute(
                            delete(StreamEventRow).where(StreamEventRow.stream_id == stream_id)
                        )
                    return
            deadline = time.monotonic() + timeout_s
        raise GenerationTimeoutError(f"no answer from the llm worker in {timeout_s:.0f} s")


def _cancel_id(stream_id: str) -> str:
    return f"{stream_id}:cancel"
