"""The Celery generate task, run in-process against the real Redis and the 0.5B model."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis

from services.common.answers import NOT_FOUND_EN
from services.common.generation_schemas import ContextPassage, GenerationRequest, StreamEvent
from services.common.streams import RedisTokenStream
from services.common.tasks import GENERATE_TASK

pytestmark = pytest.mark.integration

MODELS_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def worker(redis_url: str) -> Iterator[ModuleType]:
    """llm_worker.worker imported with its Settings pointed at the test Redis and model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZHIKU_DATA_DIR", str(MODELS_DATA_DIR))
        mp.setenv("ZHIKU_REDIS_URL", redis_url)
        mp.setenv("ZHIKU_LLM__DEFAULT_MODEL", "qwen2.5-0.5b")
        mp.setenv("ZHIKU_LLM__TEMPERATURE", "0")
        # The module builds its Settings at import (it is the Celery entrypoint): import it fresh.
        sys.modules.pop("llm_worker.worker", None)
        yield importlib.import_module("llm_worker.worker")


def _events(redis_url: str, stream_id: str) -> list[StreamEvent]:
    return list(RedisTokenStream(redis.Redis.from_url(redis_url)).read(stream_id, timeout_s=60))


def test_task_is_registered_under_the_shared_name(worker: ModuleType) -> None:
    assert GENERATE_TASK in worker.celery_app.tasks
    assert worker.settings.redis_url is not None


def test_task_streams_an_answer(worker: ModuleType, redis_url: str) -> None:
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question="How many days of paid leave do employees get?",
        passages=[
            ContextPassage(
                index=1, document_name="hr.md", text="Employees get 15 days of paid leave per year."
            )
        ],
        max_tokens=30,
    )
    worker.generate.apply(args=[req.model_dump(mode="json")])
    events = _events(redis_url, req.stream_id)
    assert events[-1].kind == "end"
    answer = "".join(e.text for e in events)
    assert "15" in answer
    assert NOT_FOUND_EN not in answer


def test_invalid_payload_is_reported_on_its_stream(worker: ModuleType, redis_url: str) -> None:
    stream_id = uuid.uuid4().hex
    worker.generate.apply(args=[{"stream_id": stream_id, "passages": "not a list"}])
    events = _events(redis_url, stream_id)
    assert [e.kind for e in events] == ["error"]
    assert events[0].error_type == "validation_error"
