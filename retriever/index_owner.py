"""One retriever process per local index directory: an exclusive lock file held while it runs.

The local backend's FAISS files, Tantivy indexes and journals are written by the process that
holds them in memory; a second process on the same directory would serve stale results and
overwrite the first one's snapshots. The lock is ``flock`` on ``<index_dir>/owner.lock``: the
kernel drops it when the process ends, however it ends, so a crash leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from services.common.errors import IndexInUseError

LOCK_FILE = "owner.lock"


class IndexOwner:
    """The exclusive hold of one index directory by this process, until ``release()``."""

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / LOCK_FILE
        # A file object, not a bare descriptor: one dropped unreleased still frees the lock.
        self._file: IO[str] | None = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read(32).strip() or "unknown"
            self.release()
            raise IndexInUseError(
                f"the index directory {index_dir} is in use by another retriever process "
                f"(pid {holder}): the local backend (FAISS + Tantivy) serves from one process "
                "only. Stop the other retriever, give this one its own ZHIKU_DATA_DIR, or run "
                "replicas on ZHIKU_RETRIEVAL__BACKEND=milvus"
            ) from None
        self._file.truncate(0)
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        """Let another process take the directory (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None
