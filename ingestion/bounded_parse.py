"""Parse one uploaded document in a child process bounded in time and memory.

A hostile or broken file can make a parser loop, backtrack or allocate without end (a crafted
PDF, a megabyte of spaces, 100k nested tags); in a child (services.common.bounded_child) it only
costs that child, never the worker that runs everyone's jobs. Every format goes through here:
``python -m ingestion.parse_child KIND FILE LIMITS_JSON`` prints ``{"sections": [...]}`` or
``{"error": "...", "error_type": "..."}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion import parse_progress as progress
from ingestion.parse_progress import ProgressCallback
from services.common.bounded_child import ChildCrashedError, ChildTimeoutError, run_bounded
from services.common.errors import DocumentParseError

if TYPE_CHECKING:
    from ingestion.sections import Section
    from services.common.settings import ParsingSettings

CHILD = "ingestion.parse_child"


def parse_bounded(
    path: Path, kind: str, limits: ParsingSettings, on_progress: ProgressCallback | None = None
) -> list[Section]:
    """The normalised sections of ``path`` as read by a child within ``limits``; raises its error.

    ``on_progress(done, total)`` hears of pages read, from a thread, while the child runs.
    """
    read_fd, write_fd = os.pipe()
    listener = progress.listen(read_fd, on_progress or (lambda done, total: None))
    try:
        result = run_bounded(
            CHILD, [kind, str(path), limits.model_dump_json()], limits.timeout_s,
            env={progress.ENV: str(write_fd)}, pass_fds=(write_fd,),
        )  # fmt: skip
    except ChildTimeoutError as exc:
        raise DocumentParseError(
            f"parsing the {kind} file took longer than {limits.timeout_s:g} s "
            "(ZHIKU_PARSING__TIMEOUT_S); refused"
        ) from exc
    except ChildCrashedError as exc:
        raise DocumentParseError(
            f"parsing the {kind} file needed more than {limits.max_memory_mb} MB "
            "(ZHIKU_PARSING__MAX_MEMORY_MB) or crashed the parser; refused"
        ) from exc
    finally:
        os.close(write_fd)  # the child's copy is closed too: the listener sees the end
        listener.join(timeout=5)
    return list(result["sections"])
