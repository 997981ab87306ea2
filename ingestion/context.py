"""What an ingestion process works with: database, embedder and retriever client."""

from __future__ import annotations

import logging

from ingestion.pipeline import IngestionContext
from services.common.db import make_engine, make_sessionmaker
from services.common.embedding import create_embedder
from services.common.retriever_client import RetrieverClient
from services.common.settings import Settings

logger = logging.getLogger(__name__)


def build_context(settings: Settings) -> IngestionContext:
    """Connect to the database and the retriever and load the embedder (warmed up)."""
    engine = make_engine(settings.sqlalchemy_url)
    embedder = create_embedder(settings.embedding)
    embedder.embed(["预热 warm-up"])  # loads the weights now, not in the first job
    context = IngestionContext(
        settings=settings,
        sessions=make_sessionmaker(engine),
        embedder=embedder,
        retriever=RetrieverClient(settings.retriever_url, token=settings.internal_token),
    )
    logger.info("ingestion worker ready: embedder %s (%dd)", embedder.name, embedder.dim)
    return context
