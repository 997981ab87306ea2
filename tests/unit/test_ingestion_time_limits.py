"""The ingestion job's time limit: enforced in the worker process, nested sensibly in settings."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from pydantic import ValidationError

from ingestion.time_limits import job_time_limit
from services.common.errors import IngestionTimeoutError
from services.common.settings import ParsingSettings, Settings


@pytest.mark.timeout(30)
def test_a_job_past_its_limit_is_stopped_with_the_reason() -> None:
    started = time.monotonic()
    reason = r"longer than 0.2 s.*SOFT_TIME_LIMIT_S"
    with pytest.raises(IngestionTimeoutError, match=reason), job_time_limit(0.2):
        time.sleep(20)
    assert time.monotonic() - started < 5


@pytest.mark.timeout(30)
def test_the_limit_interrupts_a_busy_loop() -> None:
    with pytest.raises(IngestionTimeoutError), job_time_limit(0.2):
        while True:
            pass


@pytest.mark.timeout(30)
def test_a_job_within_its_limit_leaves_no_alarm_behind() -> None:
    outer = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's own, when it set one
    handler = signal.getsignal(signal.SIGALRM)
    with job_time_limit(5):
        pass
    assert signal.getsignal(signal.SIGALRM) is handler
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert (left == 0) if outer == 0 else (0 < left <= outer)
    time.sleep(0.3)  # and nothing fires later


def test_outside_the_main_thread_the_job_runs_unlimited() -> None:
    done: list[bool] = []

    def run() -> None:
        with job_time_limit(0.01):
            time.sleep(0.1)
        done.append(True)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert done == [True]


def test_limits_must_nest() -> None:
    Settings(parsing=ParsingSettings(timeout_s=60), ingest_soft_time_limit_s=120)
    with pytest.raises(
        ValidationError, match=r"parsing timeout \(600 s\) < ingestion soft time limit \(300 s\)"
    ):
        Settings(parsing=ParsingSettings(timeout_s=600), ingest_soft_time_limit_s=300)
    with pytest.raises(ValidationError, match=r"\(600 s\) < ingestion time limit \(600 s\)"):
        Settings(ingest_soft_time_limit_s=600, ingest_time_limit_s=600)
