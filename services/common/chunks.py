"""The one chunk vocabulary: what is indexed, what a search finds, what a reader is shown.

A chunk is a piece of one document, stored as a database row whose id is also its id in the
retriever's indexes. Its fields are declared here once; the retriever's wire contracts and the
public shapes in ``services.common.schemas`` (search hits, citations, passages) are built from
these by inheritance, so their JSON stays flat.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)


def encode_vector(vector: NDArray[np.float32]) -> str:
    """Base64 of the little-endian float32 bytes: a vector's form on the wire."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def parse_vector(value: Any) -> NDArray[np.float32]:
    """A float32 vector from an array (in process) or its base64 wire form."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False)
    if not isinstance(value, str):
        raise ValueError(f"a vector is base64 of float32 bytes, not {type(value).__name__}")
    try:
        raw = np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("vector is not base64 of float32 bytes") from exc
    return raw.astype(np.float32)


Vector = Annotated[
    NDArray[np.float32],
    PlainValidator(parse_vector),
    PlainSerializer(encode_vector, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "base64"}),
]


class ChunkRef(BaseModel):
    """Which chunk: its id and the document it was cut from."""

    chunk_id: int = Field(..., ge=0, description="The chunk's database id; also its index id.")
    document_id: int = Field(..., ge=0, description="The document the chunk belongs to.")


class ChunkIn(ChunkRef):
    """A chunk as it is indexed: its text for keywords and its embedding for dense search."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(..., max_length=200_000, description="Chunk text for the keyword index.")
    vector: Vector = Field(..., description="The embedding; base64 of little-endian float32.")


class ScoredChunk(ChunkRef):
    """A chunk a search found, with the scores it was ranked by (None where a ranker missed it)."""

    score: float = Field(..., description="Cosine (dense), BM25 (keyword) or RRF (hybrid).")
    dense_score: float | None = Field(None, description="Cosine similarity to the query.")
    keyword_score: float | None = Field(None, description="BM25 score, when the chunk matched.")


class ChunkLocation(BaseModel):
    """Where in its document a chunk was read: a PDF page, a sheet and its rows, a slide."""

    model_config = ConfigDict(frozen=True)

    page: int | None = Field(None, ge=1, description="PDF page, counted from 1.")
    sheet: str | None = Field(None, max_length=255, description="Spreadsheet sheet name.")
    rows: str | None = Field(
        None, max_length=32, description="Table rows in the chunk, e.g. '2-40' (header is 1)."
    )
    slide: int | None = Field(None, ge=1, description="Presentation slide, counted from 1.")

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> ChunkLocation | None:
        """The location of a chunk row's JSON column (None where it has none)."""
        return cls.model_validate(stored) if stored else None


class ChunkView(ChunkRef):
    """A stored chunk as readers see it: its text, its document's name and its place there."""

    document_name: str
    position: int = Field(..., description="Index of the chunk inside its document.")
    text: str
    location: ChunkLocation | None = Field(
        None, description="Page, sheet and rows, or slide; None for formats without them."
    )
