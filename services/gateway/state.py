"""The long-lived parts the gateway holds for its whole life."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.common.backend import Backend
from services.common.rate_limits import Limiter
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings
from services.common.streams import TokenStream
from services.gateway.generation_slots import GenerationSlots


@dataclass
class GatewayState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    backend: Backend
    celery: Celery
    streams: TokenStream
    retriever: RetrieverClient
    slots: GenerationSlots
    limiter: Limiter | None = None  # None: rate limits off
