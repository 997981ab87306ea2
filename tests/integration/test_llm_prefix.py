"""The fixed prompt part kept per worker, with the real bundled Qwen2.5 0.5B model (CPU)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from llm_worker.generator import LlamaGenerator
from llm_worker.model_files import ensure_model
from llm_worker.prefix import ChatRenderer, PrefixStates
from llm_worker.prompts import build_messages, fixed_turn_count
from services.common.generation_schemas import ContextPassage, GenerationRequest
from services.common.settings import LLMSettings, Settings

pytestmark = pytest.mark.integration

MODELS_DATA_DIR = Path(__file__).resolve().parents[2] / "data"

ZH = GenerationRequest(
    stream_id="zh",
    question="知库网关默认监听哪个端口？",
    passages=[
        ContextPassage(
            index=1,
            document_name="部署.md",
            text="知库网关默认监听 8000 端口，检索服务使用 8001 端口。",
        )
    ],
)
EN = GenerationRequest(
    stream_id="en",
    question="Which formats does zhiku support?",
    passages=[
        ContextPassage(
            index=1,
            document_name="formats.md",
            text="zhiku supports PDF, Word and Markdown documents.",
        )
    ],
)


def _settings(**overrides: Any) -> LLMSettings:
    return LLMSettings(default_model="qwen2.5-0.5b", temperature=0.0, max_tokens=24, **overrides)


@pytest.fixture(scope="module")
def generator() -> LlamaGenerator:
    path = ensure_model(Settings(data_dir=MODELS_DATA_DIR, llm=_settings()))
    return LlamaGenerator(_settings(), path)


def _answer(generator: LlamaGenerator, req: GenerationRequest, max_tokens: int = 24) -> str:
    messages = build_messages(req)
    return "".join(generator.stream(messages, 0.0, max_tokens, fixed_turn_count(req)))


def test_rendered_tokens_are_those_create_chat_completion_evaluates(
    generator: LlamaGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    llama = generator._llama
    renderer = ChatRenderer.for_model(llama)
    assert renderer is not None
    seen: dict[str, Any] = {}

    def capture(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise StopIteration

    monkeypatch.setattr(llama, "create_completion", capture)
    messages = build_messages(ZH)
    with pytest.raises(StopIteration):
        llama.create_chat_completion(messages=messages, stream=True)  # type: ignore[arg-type]
    prompt = renderer.prompt(messages)
    assert prompt.tokens == seen["prompt"]
    assert prompt.stop == seen["stop"]
    fixed = renderer.turns(messages[: fixed_turn_count(ZH)])
    assert 500 < len(fixed) < len(prompt.tokens)
    assert prompt.tokens[: len(fixed)] == fixed


def test_a_prefix_that_is_not_a_token_prefix_is_not_restored(
    generator: LlamaGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    llama = generator._llama
    states = PrefixStates(llama, 4)
    before = llama.n_tokens
    with caplog.at_level(logging.WARNING, logger="llm_worker.prefix"):
        cached = states.prepare([1, 2, 3, 4, 5], [1, 2, 9])
    assert "not a token prefix" in caplog.text
    assert llama.n_tokens == before  # nothing evaluated or restored: a full evaluation follows
    assert cached <= 2
    assert not states._states


def test_restored_prefix_answers_alike_and_evaluates_only_the_suffix(
    generator: LlamaGenerator,
) -> None:
    first = _answer(generator, ZH)  # evaluates and keeps the Chinese rules and examples
    zh_prompt = generator.last_timings["prompt_tokens"]
    cached = generator.last_timings["cached_tokens"]
    assert generator.last_timings["evaluated_tokens"] == zh_prompt - cached
    _answer(generator, EN, max_tokens=4)  # the English ones replace them in the context
    assert generator.last_timings["cached_tokens"] < 10  # only "<|im_start|>system\n" is shared
    again = _answer(generator, ZH)
    timings = generator.last_timings
    renderer = ChatRenderer.for_model(generator._llama)
    assert renderer is not None
    fixed = len(renderer.turns(build_messages(ZH)[: fixed_turn_count(ZH)]))
    assert timings["cached_tokens"] == fixed
    assert timings["prompt_tokens"] == zh_prompt
    assert timings["evaluated_tokens"] == zh_prompt - fixed
    assert again == first
    assert "8000" in again
