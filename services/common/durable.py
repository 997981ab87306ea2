"""Durable renames: a renamed file survives a power cut only once its folder is synced."""

from __future__ import annotations

import os


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Sync ``directory`` itself: a rename lives in the directory entry, the folder's own data."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
