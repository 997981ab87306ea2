"""The openai generation backend against llama-cpp-python's own OpenAI-compatible server.

The gateway's real pipeline, slots and token streams on the real Redis; the test runs the llm
worker's generation (run_generation) on the task the gateway queued, streaming from a real
``python -m llama_cpp.server`` on the bundled Qwen2.5 0.5B model, or from a server that fails.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from llm_worker.engines import create_generator
from llm_worker.generator import LlamaGenerator
from llm_worker.model_files import ensure_model
from llm_worker.openai_generator import OpenAIGenerator, approx_tokens
from llm_worker.prompts import build_messages
from llm_worker.service import CANCELLED, run_generation
from services.common.errors import GenerationTimeoutError, NotReadyError, ZhikuError
from services.common.generation_schemas import ContextPassage, GenerationRequest
from services.common.models import KnowledgeBase
from services.common.schemas import ChatMessage, ChunkHit
from services.common.settings import LLMSettings, Settings
from services.common.streams import RedisTokenStream
from services.common.tasks import llm_queue
from services.gateway.app import build_state
from services.gateway.chat import pipeline
from services.gateway.chat.pipeline import ChatPipeline
from services.gateway.health.routes import readyz
from services.gateway.state import GatewayState
from tests.integration.openai_servers import (
    dying_stream_reply,
    endless_stream_server,
    free_port,
    interrupted_stream_reply,
    llama_cpp_server,
    raw_server,
)

pytestmark = pytest.mark.integration

MODELS_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
ALIAS = "qwen2.5-0.5b"
PASSAGE = "Employees get 15 days of paid leave per year."
QUESTION = "How many days of paid leave do employees get?"


def _llm(base_url: str | None = None, **overrides: Any) -> LLMSettings:
    fields: dict[str, Any] = {
        "backend": "openai",
        "base_url": base_url,
        "model": ALIAS,
        "default_model": "qwen2.5-0.5b",
        "temperature": 0.0,
        "max_tokens": 40,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 20.0,
    }
    return LLMSettings(**{**fields, **overrides})


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_model(Settings(data_dir=MODELS_DATA_DIR, llm=_llm()))


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[str]:
    with llama_cpp_server(model_path, ALIAS) as base_url:
        yield base_url


@pytest.fixture
def state(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GatewayState]:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        queue_prefix=f"zhiku-openai-{uuid.uuid4().hex[:8]}",
        llm_queue_depth=1,
        generation_timeout_s=60,
    )
    state = build_state(settings)
    hit = ChunkHit(
        chunk_id=7,
        document_id=3,
        document_name="hr.md",
        position=0,
        text=PASSAGE,
        score=0.9,
        dense_score=0.8,
    )
    monkeypatch.setattr(pipeline, "search_chunks", lambda *_args: [hit])
    yield state
    state.slots.close()
    client = redis.Redis.from_url(redis_url)
    client.delete(llm_queue(settings), f"{settings.queue_prefix}:heartbeat:llm")
    state.engine.dispose()


def _serve_one(state: GatewayState, generator: OpenAIGenerator) -> threading.Thread:
    """The llm worker: take the next queued generation and run it, in a thread."""
    state.backend.heartbeats.publish("llm", generator.backend_info())

    def work() -> None:
        client = redis.Redis.from_url(str(state.settings.redis_url))
        popped = client.brpop([llm_queue(state.settings)], timeout=30)
        assert popped is not None, "no generation was queued"
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(popped[1])["body"]))
        run_generation(GenerationRequest.model_validate(args[0]), state.streams, generator)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _chat(state: GatewayState, generator: OpenAIGenerator) -> Any:
    """One chat through the gateway's pipeline, answered by the worker thread."""
    worker = _serve_one(state, generator)
    kb = KnowledgeBase(id=1, name="kb", embedding_model="m", embedding_dim=4)
    chat = ChatPipeline(state, kb, [ChatMessage(role="user", content=QUESTION)])
    try:
        return chat.start(cast(Any, None)).answer()
    finally:
        worker.join(timeout=60)
        assert state.slots.in_flight() == 0


def test_a_chat_is_answered_and_cited_through_the_server(state: GatewayState, server: str) -> None:
    response = _chat(state, OpenAIGenerator(_llm(server)))
    assert "15" in response.answer
    assert [c.document_name for c in response.citations] == ["hr.md"]
    assert response.grounded
    assert response.usage["completion_tokens"] > 0
    assert response.timings["first_token_ms"] > 0


def test_readyz_names_the_backend_and_whether_it_answers(state: GatewayState, server: str) -> None:
    state.backend.heartbeats.publish("llm", OpenAIGenerator(_llm(server)).backend_info())
    body = json.loads(readyz(state).body)
    assert body["checks"]["llm"] == f"ok: 1 worker(s), openai ({ALIAS} at {server}/)"
    down = f"http://127.0.0.1:{free_port()}/v1"
    state.backend.heartbeats.publish("llm", OpenAIGenerator(_llm(down)).backend_info())
    response = readyz(state)
    assert response.status_code == 503
    assert "not reachable" in json.loads(response.body)["checks"]["llm"]


def _failing_chat(state: GatewayState, base_url: str, expected: type[ZhikuError]) -> float:
    generator = OpenAIGenerator(_llm(base_url, read_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(expected) as caught:
        _chat(state, generator)
    assert base_url in caught.value.message
    return time.monotonic() - started


def test_a_server_that_refuses_connections_is_a_503(state: GatewayState, server: str) -> None:
    took = _failing_chat(state, f"http://127.0.0.1:{free_port()}/v1", NotReadyError)
    assert took < 10
    assert "15" in _chat(state, OpenAIGenerator(_llm(server))).answer  # still serving


def test_a_server_that_stalls_is_a_504_after_the_read_timeout(
    state: GatewayState, server: str
) -> None:
    with raw_server(None) as silent:
        took = _failing_chat(state, silent, GenerationTimeoutError)
    assert 1.0 <= took < 10
    assert "15" in _chat(state, OpenAIGenerator(_llm(server))).answer


def test_a_server_dying_mid_stream_is_a_503(state: GatewayState, server: str) -> None:
    with raw_server(dying_stream_reply("Employees")) as dying:
        _failing_chat(state, dying, NotReadyError)
    assert "15" in _chat(state, OpenAIGenerator(_llm(server))).answer


def test_a_stream_ended_without_a_finish_reason_is_a_503(state: GatewayState) -> None:
    """llama-cpp-python's server ends an answer so when another request comes in."""
    with raw_server(interrupted_stream_reply("Employees")) as interrupted:
        _failing_chat(state, interrupted, NotReadyError)


def test_a_stream_cancelled_mid_answer_stops_the_server_stream(redis_url: str) -> None:
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question="Write a long essay about paid leave.",
        passages=[ContextPassage(index=1, document_name="hr.md", text=PASSAGE)],
        max_tokens=400,
    )
    with endless_stream_server() as (endless, closed):
        generator = OpenAIGenerator(_llm(endless, grounding_hold=False))
        worker = threading.Thread(target=run_generation, args=(req, stream, generator))
        worker.start()
        events = stream.read(req.stream_id, timeout_s=60)
        assert next(events).kind == "token"
        stream.cancel(req.stream_id)
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert closed.wait(timeout=10), "the server kept streaming after the cancel"
    end = [e for e in events if e.kind != "token"]
    assert [(e.kind, e.text) for e in end] == [("end", CANCELLED)]
    assert 0 < end[0].usage["completion_tokens"] < 400


def test_the_same_answer_as_the_embedded_worker(model_path: Path, server: str) -> None:
    """Temperature 0 on the same GGUF: the server renders the same chat template."""
    req = GenerationRequest(
        stream_id="same",
        question=QUESTION,
        passages=[ContextPassage(index=1, document_name="hr.md", text=PASSAGE)],
    )
    messages = build_messages(req)
    embedded = LlamaGenerator(_llm(backend="llama.cpp"), model_path)
    remote = create_generator(Settings(llm=_llm(server)))
    local_answer = "".join(embedded.stream(messages, 0.0, 40))
    remote_answer = "".join(remote.stream(messages, 0.0, 40))
    assert remote_answer == local_answer
    assert remote.last_usage["completion_tokens"] == embedded.last_usage["completion_tokens"]


@pytest.mark.parametrize("name", ["zh_manual.md", "en_report.txt"])
def test_the_token_estimate_errs_a_little_high(model_path: Path, name: str) -> None:
    """A passage budget counted with the estimate fits the real prompt (measured 1.21x, 1.17x)."""
    embedded = LlamaGenerator(_llm(backend="llama.cpp", n_ctx=512), model_path)
    text = (Path(__file__).resolve().parents[1] / "data" / name).read_text(encoding="utf-8")
    assert 1.0 <= approx_tokens(text) / embedded.count_tokens(text) <= 1.4
