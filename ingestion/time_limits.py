"""The time limit of one ingestion job, enforced inside the worker process whatever its pool.

Celery raises at ``soft_time_limit`` only in prefork children, and zhiku's workers run
``--pool solo``, where Celery enforces no limit at all. An alarm signal works in both: the task
runs in the main thread, where a signal handler can raise between two bytecodes, so the job
fails with its reason and the worker moves on. A long call into C (a backtracking regex) sees
the signal late, if at all; that is why parsing runs in a child that is killed at its limit.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from services.common.errors import IngestionTimeoutError

logger = logging.getLogger(__name__)


@contextmanager
def job_time_limit(seconds: float) -> Iterator[None]:
    """Raise IngestionTimeoutError in the block once it has run ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        # Signals reach only the main thread: a thread pool runs its jobs unlimited.
        logger.warning("not in the main thread: the ingestion time limit is not enforced")
        yield
        return
    pending, _ = signal.getitimer(signal.ITIMER_REAL)
    if 0 < pending <= seconds:
        yield  # an alarm already set (a test's own timeout) comes first anyway
        return

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise IngestionTimeoutError(
            f"ingestion took longer than {seconds:g} s (ZHIKU_INGEST_SOFT_TIME_LIMIT_S); stopped"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if pending:  # the alarm set before ours keeps what it had left
            signal.setitimer(signal.ITIMER_REAL, max(pending - (time.monotonic() - started), 1e-3))
