"""Work on an untrusted file in a child process bounded in time and memory.

A hostile or broken file can make a library loop, backtrack or allocate without end (a crafted
PDF, a megabyte of spaces, 100k nested tags); in a child it only costs that child, never the
process serving everyone else. The parent runs ``python -m MODULE ARGS...`` with
``run_bounded``; the module's ``main`` calls ``child_main``, which caps the child's address
space, runs the work and prints ``{...result}`` or ``{"error": ..., "error_type": ...}``.
Parsing uploads (ingestion.bounded_parse) and rendering PDF pages for previews both go through
here.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.common.errors import ERROR_TYPES, DocumentParseError, ZhikuError

logger = logging.getLogger(__name__)

OK, FAILED, OUT_OF_MEMORY = 0, 2, 3
_ROOT = Path(__file__).resolve().parents[2]


class ChildTimeoutError(Exception):
    """The child ran past its time limit and was killed."""


class ChildCrashedError(Exception):
    """The child ran out of memory or died without an answer."""


def run_bounded(
    module: str,
    args: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> dict[str, Any]:
    """The child's JSON answer; its own error re-raised as the zhiku error it named.

    Raises ChildTimeoutError or ChildCrashedError for the caller to word in its own terms.
    """
    # The child imports the very code this process runs, wherever it was started.
    paths = [str(_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", module, *args]
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=timeout_s, check=False, env=child_env,
            pass_fds=tuple(pass_fds),
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # run() has killed the child
        raise ChildTimeoutError(f"{module} ran past {timeout_s:g} s") from exc
    if proc.returncode in (OK, FAILED) and proc.stdout:
        result: dict[str, Any] = json.loads(proc.stdout)
        if "error" in result:
            raise ERROR_TYPES.get(result["error_type"], DocumentParseError)(str(result["error"]))
        return result
    logger.warning("%s child exited %d: %s", module, proc.returncode, proc.stderr[-500:])
    raise ChildCrashedError(f"{module} exited {proc.returncode}")


def child_main(max_memory_mb: int, work: Callable[[], dict[str, Any]]) -> int:
    """The child's side: cap its address space, run ``work``, print its answer as JSON.

    Returns the exit code; ``work`` should import its libraries itself, so they load under
    the cap.
    """
    import resource

    cap = max_memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        result = work()
    except MemoryError:
        return OUT_OF_MEMORY
    except ZhikuError as exc:
        result = {"error": exc.message, "error_type": exc.error_type}
    # Bytes, not sys.stdout: its encoding follows the locale, which may not hold Chinese.
    sys.stdout.buffer.write(json.dumps(result, ensure_ascii=False).encode())
    return FAILED if "error" in result else OK
