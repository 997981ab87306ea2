"""Append-only journal of dense-index changes between two snapshots of a knowledge base.

FAISS has no commit of its own, so every add or delete appends one record (chunk ids, their
documents and vectors; the keyword index commits itself) and fsyncs it before the retriever
answers: a change costs what it writes rather than a rewrite of the whole index. A record is
framed as ``<u32 payload length><u32 crc32 of payload><payload>``; a record cut short by a crash
(or damaged) fails that check and it and everything after it are dropped when it is read.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from services.common.durable import fsync_dir

logger = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
COUNTS = struct.Struct("<II")
# "U" records of an older format also held the texts; "V" records hold vectors only.
UPSERT, REMOVE = b"V", b"R"
# No single batch comes near this (10k chunks of 8k floats is 320 MiB); a larger length read
# back can only be damage, and must not make the reader allocate it.
MAX_RECORD_BYTES = 1 << 30


@dataclass(frozen=True)
class Upserted:
    """Chunks added or replaced by one request: their documents and vectors."""

    chunk_ids: NDArray[np.int64]
    document_ids: NDArray[np.int64]
    vectors: NDArray[np.float32]


@dataclass(frozen=True)
class Removed:
    """Chunks deleted by one request."""

    chunk_ids: NDArray[np.int64]


Entry = Upserted | Removed


def encode(entry: Entry) -> bytes:
    """One framed record."""
    ids = np.ascontiguousarray(entry.chunk_ids, dtype="<i8").tobytes()
    if isinstance(entry, Removed):
        payload = REMOVE + ids
    else:
        n, dim = entry.vectors.shape
        payload = b"".join(
            [
                UPSERT,
                COUNTS.pack(n, dim),
                ids,
                np.ascontiguousarray(entry.document_ids, dtype="<i8").tobytes(),
                np.ascontiguousarray(entry.vectors, dtype="<f4").tobytes(),
            ]
        )
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> Entry:
    """The entry of one record's payload (already checked against its crc)."""
    kind, body = payload[:1], memoryview(payload)[1:]
    if kind == REMOVE:
        return Removed(np.frombuffer(body, dtype="<i8").astype(np.int64))
    if kind != UPSERT:
        raise ValueError(f"unknown journal record kind {kind!r}")
    n, dim = COUNTS.unpack_from(body)
    at = COUNTS.size
    ids = np.frombuffer(body, dtype="<i8", count=n, offset=at).astype(np.int64)
    docs = np.frombuffer(body, dtype="<i8", count=n, offset=at + 8 * n).astype(np.int64)
    at += 16 * n
    if len(body) != at + 4 * n * dim:
        raise ValueError(f"journal record of {len(body)} bytes for {n} chunks of dim {dim}")
    vectors = np.frombuffer(body, dtype="<f4", count=n * dim, offset=at).reshape(n, dim)
    return Upserted(ids, docs, vectors.astype(np.float32))


class Journal:
    """One journal file; absent and empty mean the same: nothing since the snapshot."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, entry: Entry) -> None:
        """Append one record and fsync it; a failed append is cut back off."""
        record = encode(entry)
        created = not self.path.exists()
        with self.path.open("ab") as fh:
            start = fh.tell()
            try:
                fh.write(record)
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                # Leave no partial record for the next append to follow.
                fh.truncate(start)
                raise
        if created:
            fsync_dir(self.path.parent)

    def replay(self) -> Iterator[Entry]:
        """Every whole record in order; a torn or damaged tail is logged and cut off."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        at = 0
        while at < len(data):
            payload = _payload_at(data, at)
            if payload is None:
                logger.warning(
                    "journal %s: dropping %d bytes after offset %d (torn or damaged record)",
                    self.path,
                    len(data) - at,
                    at,
                )
                os.truncate(self.path, at)
                break
            yield decode(payload)
            at += FRAME.size + len(payload)

    def discard(self) -> None:
        """Delete the file (its records are in a snapshot now)."""
        self.path.unlink(missing_ok=True)


def _payload_at(data: bytes, at: int) -> bytes | None:
    if len(data) - at < FRAME.size:
        return None
    length, crc = FRAME.unpack_from(data, at)
    end = at + FRAME.size + length
    if length == 0 or length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = data[at + FRAME.size : end]
    return payload if zlib.crc32(payload) == crc else None
