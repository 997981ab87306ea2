"""Parse one uploaded document in a child process bounded in time and memory.

A hostile or broken file can make a parser loop, backtrack or allocate without end (a crafted
PDF, a megabyte of spaces, 100k nested tags); in a child it only costs that child, never the
worker that runs everyone's jobs. Every format goes through here:
``python -m ingestion.parse_child KIND FILE LIMITS_JSON`` prints ``{"sections": [...]}`` or
``{"error": "...", "error_type": "..."}``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ingestion import parse_progress as progress
from ingestion.parse_progress import ProgressCallback
from services.common.errors import ERROR_TYPES, DocumentParseError

if TYPE_CHECKING:
    from ingestion.sections import Section
    from services.common.settings import ParsingSettings

logger = logging.getLogger(__name__)

OK, FAILED, OUT_OF_MEMORY = 0, 2, 3
CHILD = "ingestion.parse_child"
_ROOT = Path(__file__).resolve().parents[1]


def parse_bounded(
    path: Path, kind: str, limits: ParsingSettings, on_progress: ProgressCallback | None = None
) -> list[Section]:
    """The normalised sections of ``path`` as read by a child within ``limits``; raises its error.

    ``on_progress(done, total)`` hears of pages read, from a thread, while the child runs.
    """
    # The child imports the very code this process runs, wherever the worker was started.
    paths = [str(_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", CHILD, kind, str(path), limits.model_dump_json()]
    read_fd, write_fd = os.pipe()
    env[progress.ENV] = str(write_fd)
    listener = progress.listen(read_fd, on_progress or (lambda done, total: None))
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=limits.timeout_s, check=False, env=env,
            pass_fds=(write_fd,),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # run() has killed the child
        raise DocumentParseError(
            f"parsing the {kind} file took longer than {limits.timeout_s:g} s "
            "(ZHIKU_PARSING__TIMEOUT_S); refused"
        ) from exc
    finally:
        os.close(write_fd)  # the child's copy is closed too: the listener sees the end
        listener.join(timeout=5)
    if proc.returncode in (OK, FAILED) and proc.stdout:
        result = json.loads(proc.stdout)
        if "error" in result:
            raise ERROR_TYPES.get(result["error_type"], DocumentParseError)(str(result["error"]))
        return list(result["sections"])
    logger.warning("parser child exited %d: %s", proc.returncode, proc.stderr[-500:])
    raise DocumentParseError(
        f"parsing the {kind} file needed more than {limits.max_memory_mb} MB "
        "(ZHIKU_PARSING__MAX_MEMORY_MB) or crashed the parser; refused"
    )
