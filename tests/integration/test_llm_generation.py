"""The llm worker with the real bundled Qwen2.5 0.5B model (CPU) and the real Redis."""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import llama_cpp
import pytest
import redis

from llm_worker.generator import LlamaGenerator
from llm_worker.grounding import guard_first_sentence
from llm_worker.model_files import ensure_model
from llm_worker.prompts import build_messages
from llm_worker.service import CANCELLED, run_generation
from services.common.answers import NOT_FOUND_EN, NOT_FOUND_ZH, not_found_message
from services.common.errors import NotReadyError
from services.common.generation_schemas import ContextPassage, GenerationRequest, StreamEvent
from services.common.settings import LLMSettings, Settings
from services.common.streams import RedisTokenStream

pytestmark = pytest.mark.integration

# Shared across test runs so the 0.5B model is joined and hashed only once (data/ is gitignored).
MODELS_DATA_DIR = Path(__file__).resolve().parents[2] / "data"

PASSAGES_ZH = [
    ContextPassage(
        index=1,
        document_name="部署.md",
        text="知库网关默认监听 8000 端口，检索服务使用 8001 端口。",
    ),
    ContextPassage(index=2, document_name="格式.md", text="知库支持 PDF、Word 和 Markdown 文档。"),
]
PASSAGES_EN = [
    ContextPassage(
        index=1,
        document_name="deploy.md",
        text="The zhiku gateway listens on port 8000 by default; the retriever uses port 8001.",
    ),
    ContextPassage(
        index=2, document_name="formats.md", text="zhiku supports PDF, Word and Markdown documents."
    ),
]


def _llm_settings(**overrides: object) -> LLMSettings:
    return LLMSettings(default_model="qwen2.5-0.5b", temperature=0.0, max_tokens=60, **overrides)


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_model(Settings(data_dir=MODELS_DATA_DIR, llm=_llm_settings()))


@pytest.fixture(scope="module")
def generator(model_path: Path) -> LlamaGenerator:
    return LlamaGenerator(_llm_settings(), model_path)


def _answer(generator: LlamaGenerator, question: str, passages: list[ContextPassage]) -> str:
    """The answer as run_generation streams it: the model's words behind the grounding check."""
    req = GenerationRequest(stream_id="t", question=question, passages=passages)
    pieces = generator.stream(build_messages(req), temperature=0.0, max_tokens=60)
    texts = [p.text for p in passages]
    support = generator.settings.grounding_support
    return "".join(guard_first_sentence(pieces, texts, not_found_message(question), support))


def test_backend_info_reports_the_cpu_build(generator: LlamaGenerator) -> None:
    info = generator.backend_info()
    assert info["backend"] == "cpu"
    assert info["gpu_layers"] == 0
    assert info["layers"] == 24
    assert info["model"] == "qwen2.5-0.5b-q4_k_m.gguf"


@pytest.mark.parametrize(
    ("question", "passages", "fact"),
    [
        ("知库网关的默认端口是多少？", PASSAGES_ZH, "8000"),
        ("What port does the zhiku gateway listen on by default?", PASSAGES_EN, "8000"),
    ],
)
def test_answer_from_passages_cites_the_passage(
    generator: LlamaGenerator, question: str, passages: list[ContextPassage], fact: str
) -> None:
    answer = _answer(generator, question, passages)
    assert fact in answer
    assert "[1]" in answer
    assert generator.last_usage["completion_tokens"] > 0
    assert generator.last_usage["prompt_tokens"] > 100


@pytest.mark.parametrize(
    ("question", "passages", "sentence"),
    [
        ("法国的首都是哪里？", PASSAGES_ZH, NOT_FOUND_ZH),
        ("水的沸点是多少度？", PASSAGES_ZH, NOT_FOUND_ZH),
        ("What is the capital of France?", PASSAGES_EN, NOT_FOUND_EN),
        ("How many legs does a spider have?", PASSAGES_EN, NOT_FOUND_EN),
        ("熊猫主要吃什么？", PASSAGES_ZH, NOT_FOUND_ZH),
        ("Who wrote Hamlet?", PASSAGES_EN, NOT_FOUND_EN),
    ],
)
def test_unrelated_passages_give_the_not_found_message(
    generator: LlamaGenerator, question: str, passages: list[ContextPassage], sentence: str
) -> None:
    assert sentence in _answer(generator, question, passages)


def _read_all(stream: RedisTokenStream, stream_id: str) -> list[StreamEvent]:
    return list(stream.read(stream_id, timeout_s=60))


def test_run_generation_streams_tokens_then_end_over_redis(
    generator: LlamaGenerator, redis_url: str
) -> None:
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question="Which document formats does zhiku support?",
        passages=PASSAGES_EN,
        max_tokens=40,
    )
    run_generation(req, stream, generator)
    events = _read_all(stream, req.stream_id)
    assert [e.kind for e in events[:-1]] == ["token"] * (len(events) - 1)
    assert len(events) > 2
    end = events[-1]
    assert end.kind == "end"
    assert 0 < end.usage["completion_tokens"] <= 40
    assert end.usage["total_tokens"] == end.usage["prompt_tokens"] + end.usage["completion_tokens"]
    assert "PDF" in "".join(e.text for e in events)
    timings = end.timings
    assert timings["prompt_tokens"] == end.usage["prompt_tokens"]
    assert timings["evaluated_tokens"] == timings["prompt_tokens"] - timings["cached_tokens"]
    assert timings["prompt_eval_ms"] > 0 and timings["generation_ms"] > 0
    assert timings["first_token_ms"] >= timings["prompt_eval_ms"]


def test_run_generation_answers_not_found_for_unrelated_passages(
    generator: LlamaGenerator, redis_url: str
) -> None:
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex, question="水的沸点是多少度？", passages=PASSAGES_ZH
    )
    run_generation(req, stream, generator)
    events = _read_all(stream, req.stream_id)
    assert [e.kind for e in events] == ["token", "end"]
    assert events[0].text == NOT_FOUND_ZH


def test_prompt_over_the_context_window_ends_with_an_error_event(
    model_path: Path, redis_url: str
) -> None:
    small = LlamaGenerator(_llm_settings(n_ctx=512), model_path)
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    long_text = "知库把文档切成片段并建立索引。" * 200
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question="知库如何处理文档？",
        passages=[ContextPassage(index=1, document_name="长文.txt", text=long_text)],
    )
    run_generation(req, stream, small)
    events = _read_all(stream, req.stream_id)
    assert [e.kind for e in events] == ["error"]
    assert events[0].error_type == "validation_error"
    assert "too long" in events[0].text


@pytest.mark.skipif(llama_cpp.llama_supports_gpu_offload(), reason="this build can offload")
def test_gpu_layers_on_a_cpu_only_build_are_refused(model_path: Path) -> None:
    with pytest.raises(NotReadyError, match="no GPU support"):
        LlamaGenerator(_llm_settings(n_gpu_layers=1), model_path)
    with pytest.raises(NotReadyError, match="ZHIKU_LLM__N_GPU_LAYERS=0"):
        LlamaGenerator(_llm_settings(n_gpu_layers=-1), model_path)


def test_without_the_grounding_hold_the_first_sentence_is_not_held(
    model_path: Path, redis_url: str
) -> None:
    # The answer from model memory streams as generated; the gateway's check marks it instead.
    free = LlamaGenerator(_llm_settings(grounding_hold=False), model_path)
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex, question="水的沸点是多少度？", passages=PASSAGES_ZH
    )
    run_generation(req, stream, free)
    events = _read_all(stream, req.stream_id)
    assert events[-1].kind == "end"
    tokens = [e for e in events if e.kind == "token"]
    # Held, this question gives one event carrying the not-found sentence (test above); here
    # the model's own pieces arrive one by one.
    assert len(tokens) > 1
    assert tokens[0].text != NOT_FOUND_ZH


def test_prompt_cache_restores_a_repeated_prompt(model_path: Path) -> None:
    cached = LlamaGenerator(_llm_settings(prompt_cache_mb=64), model_path)
    first = GenerationRequest(stream_id="a", question="知库支持哪些格式？", passages=PASSAGES_ZH)
    other = GenerationRequest(stream_id="b", question="What port?", passages=PASSAGES_EN)
    answers = []
    for req in (first, other, first):
        answers.append("".join(cached.stream(build_messages(req), 0.0, 20)))
    cache = cached._llama.cache
    # A state is saved per distinct prompt + answer (the repeat overwrites the first one's key).
    assert cache is not None and len(cache.cache_state) >= 2
    assert answers[0] == answers[2]  # the restored state answers exactly as the first time


def test_a_cancelled_stream_stops_generation_early(
    generator: LlamaGenerator, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the hold, the pieces stream as generated; a long answer is asked for.
    free = LlamaGenerator(_llm_settings(grounding_hold=False), generator.model_path)
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question="Count from 1 to 300, separated by commas.",
        system_prompt="You follow the instruction exactly.",
        max_tokens=400,
    )
    relayed: list[StreamEvent] = []

    def reader_that_leaves() -> None:
        for event in stream.read(req.stream_id, timeout_s=600):
            relayed.append(event)
            if len(relayed) == 2:
                stream.cancel(req.stream_id)  # what the gateway does when its client left
                return

    reader = threading.Thread(target=reader_that_leaves)
    reader.start()
    with caplog.at_level(logging.INFO, logger="llm_worker.service"):
        run_generation(req, stream, free)
    reader.join()
    rest = list(stream.read(req.stream_id, timeout_s=10, after=relayed[-1].id))
    end = rest[-1]
    assert end.kind == "end" and end.text == CANCELLED
    assert 2 <= free.last_usage["completion_tokens"] < 100
    assert end.usage == free.last_usage
    assert "cancelled by its reader" in caplog.text
    # The lock is free again: the next request is answered.
    assert "PDF" in _answer(free, "Which document formats does zhiku support?", PASSAGES_EN)


def test_a_generation_cancelled_while_queued_is_not_started(
    generator: LlamaGenerator, redis_url: str
) -> None:
    stream = RedisTokenStream(redis.Redis.from_url(redis_url))
    req = GenerationRequest(stream_id=uuid.uuid4().hex, question="Which formats?")
    stream.cancel(req.stream_id)
    generator.last_usage = {"completion_tokens": -1}
    run_generation(req, stream, generator)
    events = _read_all(stream, req.stream_id)
    assert [(e.kind, e.text) for e in events] == [("end", CANCELLED)]
    assert generator.last_usage == {"completion_tokens": -1}  # the model was not asked
