"""What the retriever app holds between requests, and the dependencies that hand it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from retriever.backend import ChunkIndex
from services.common.embedding import Embedder
from services.common.errors import NotReadyError
from services.common.settings import Settings


@dataclass
class RetrieverState:
    """Settings, the index registry and the embedder once it has loaded."""

    settings: Settings
    store: ChunkIndex
    embedder: Embedder | None = None
    load_error: str | None = None

    def require_embedder(self) -> Embedder:
        """The loaded embedder, or NotReadyError while it loads (or after it failed to)."""
        if self.embedder is not None:
            return self.embedder
        if self.load_error:
            raise NotReadyError(f"the embedding model failed to load: {self.load_error}")
        raise NotReadyError("the embedding model is still loading")


def get_state(request: Request) -> RetrieverState:
    """The app's RetrieverState."""
    state: RetrieverState = request.app.state.retriever
    return state


def get_store(request: Request) -> ChunkIndex:
    """The app's index registry."""
    return get_state(request).store


def get_embedder(request: Request) -> Embedder:
    """The loaded embedder (503 not_ready until then)."""
    return get_state(request).require_embedder()


StateDep = Annotated[RetrieverState, Depends(get_state)]
StoreDep = Annotated[ChunkIndex, Depends(get_store)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
