"""Pages done, reported by the parser child to the worker while a long document is read.

The child writes ``DONE TOTAL`` lines to the pipe whose descriptor is in ZHIKU_PARSE_PROGRESS_FD;
the worker reads them on a thread and moves the job's progress. Without the variable (a parse in
this process, a test) reporting does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import IO

ENV = "ZHIKU_PARSE_PROGRESS_FD"
ProgressCallback = Callable[[int, int], None]

_pipe: IO[str] | None = None


def report_pages(done: int, total: int) -> None:
    """Tell the worker that ``done`` of ``total`` pages are read (child side)."""
    global _pipe
    if _pipe is None:
        fd = os.environ.get(ENV)
        if not fd:
            return
        _pipe = os.fdopen(int(fd), "w", buffering=1)
    # If the worker stopped listening, the text still matters more than its progress.
    with contextlib.suppress(OSError):
        _pipe.write(f"{done} {total}\n")


def listen(read_fd: int, on_progress: ProgressCallback) -> threading.Thread:
    """Read progress lines from ``read_fd`` on a daemon thread until the child closes it."""

    def run() -> None:
        with os.fdopen(read_fd, "r") as pipe:
            for line in pipe:
                parts = line.split()
                if len(parts) == 2 and all(part.isdigit() for part in parts):
                    on_progress(int(parts[0]), int(parts[1]))

    thread = threading.Thread(target=run, name="parse-progress", daemon=True)
    thread.start()
    return thread
