"""Redis, or the embedded stand-ins, decided once per process from Settings.

Everything that differs between the two shapes is handed out here: the Celery broker, the token
streams, the heartbeats, the generation slots, the rate limiter and the broker's health probe.
With Redis they share one connection pool; embedded, they live in the data directory and the
database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import redis

from services.common import fs_transport
from services.common.db import make_engine, make_sessionmaker
from services.common.heartbeat import FileHeartbeats, Heartbeats, RedisHeartbeats
from services.common.lazy import Lazy
from services.common.logging import redact_url
from services.common.rate_limits import Limiter, LocalLimiter, RedisLimiter
from services.common.settings import Settings
from services.common.slots import LocalSlotBackend, RedisSlotBackend, SlotBackend, slots_key
from services.common.streams import RedisTokenStream, SqlTokenStream, TokenStream

# How much longer than the ingestion job's hard limit a Redis message may stay unacknowledged.
VISIBILITY_MARGIN_S = 600.0


@dataclass(frozen=True)
class Broker:
    """Where Celery sends and takes its messages."""

    url: str
    transport_options: dict[str, object] = field(default_factory=dict)


class Backend(ABC):
    """One per process: build it with :func:`create_backend`."""

    description: str  # the shape in a few words, for the start-up log line
    heartbeats: Heartbeats

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Built on first use: a worker process builds its own, not its parent's before a fork.
        self._streams: Lazy[TokenStream] = Lazy(self._token_stream)

    @property
    def token_stream(self) -> TokenStream:
        """The token streams of this deployment, shared by the whole process."""
        return self._streams.get()

    @abstractmethod
    def broker(self) -> Broker: ...

    @abstractmethod
    def slot_store(self) -> SlotBackend:
        """A store for one gateway's generation slots."""

    @abstractmethod
    def limiter(self, per_minute: int) -> Limiter: ...

    @abstractmethod
    def probe(self) -> str:
        """'ok', or 'unavailable: <why>' when the broker cannot be reached."""

    @abstractmethod
    def _token_stream(self) -> TokenStream: ...


class RedisBackend(Backend):
    """Every process of a deployment shares Redis: queue, streams, beats, slots and limits."""

    def __init__(self, settings: Settings, url: str) -> None:
        super().__init__(settings)
        self.url = url
        # One pool for the process; it connects on first use and reconnects after an outage.
        self.client = redis.Redis.from_url(url, socket_timeout=2)
        self.heartbeats = RedisHeartbeats(self.client, settings.queue_prefix)
        self.description = f"Redis {redact_url(url)}"

    def broker(self) -> Broker:
        # A message not acknowledged this long goes to another worker: past the ingestion job's
        # hard limit (acks come late), so a long job is never run twice at once.
        visibility = int(self.settings.ingest_time_limit_s + VISIBILITY_MARGIN_S)
        return Broker(self.url, {"visibility_timeout": visibility})

    def slot_store(self) -> SlotBackend:
        return RedisSlotBackend(self.client, slots_key(self.settings))

    def limiter(self, per_minute: int) -> Limiter:
        return RedisLimiter(self.url, self.settings.queue_prefix, per_minute)

    def probe(self) -> str:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            return f"unavailable: {exc}"
        return "ok"

    def _token_stream(self) -> TokenStream:
        return RedisTokenStream(self.client)


class EmbeddedBackend(Backend):
    """One machine without Redis: a folder queue, beats as files, streams in the database."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.heartbeats = FileHeartbeats(settings.data_dir / "heartbeats")
        self.description = "embedded queue"

    def broker(self) -> Broker:
        folder = str(self.settings.broker_dir.resolve())
        return Broker(
            f"{fs_transport.ALIAS}://",
            {
                "data_folder_in": folder,
                "data_folder_out": folder,
                "control_folder": f"{folder}/control",
                "polling_interval": 0.05,
            },
        )

    def slot_store(self) -> SlotBackend:
        return LocalSlotBackend()

    def limiter(self, per_minute: int) -> Limiter:
        return LocalLimiter(per_minute)

    def probe(self) -> str:
        if self.settings.broker_dir.is_dir():
            return "ok"
        return "unavailable: queue folder missing"

    def _token_stream(self) -> TokenStream:
        return SqlTokenStream(make_sessionmaker(make_engine(self.settings.sqlalchemy_url)))


def create_backend(settings: Settings) -> Backend:
    """Redis when ZHIKU_REDIS_URL is set, else the embedded shape."""
    match settings.redis_url:
        case str(url) if url:
            return RedisBackend(settings, url)
        case _:
            return EmbeddedBackend(settings)
