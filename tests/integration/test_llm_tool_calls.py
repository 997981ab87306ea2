"""Tool calls written by the real bundled Qwen2.5 0.5B model (CPU), parsed as the gateway does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_worker.generator import LlamaGenerator
from llm_worker.model_files import ensure_model
from services.common.settings import LLMSettings, Settings
from services.common.tool_calls import parse_tool_calls

pytestmark = pytest.mark.integration

MODELS_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name."}},
            "required": ["city"],
        },
    },
}
QUESTION = [{"role": "user", "content": "What is the weather in Paris right now?"}]


def _settings() -> LLMSettings:
    return LLMSettings(
        default_model="qwen2.5-0.5b", n_ctx=2048, n_threads=4, max_tokens=96, prefix_states=0
    )


@pytest.fixture(scope="module")
def generator() -> LlamaGenerator:
    path = ensure_model(Settings(data_dir=MODELS_DATA_DIR, llm=_settings()))
    return LlamaGenerator(_settings(), path)


def _reply(generator: LlamaGenerator, messages: list[dict[str, Any]], **kw: Any) -> str:
    return "".join(generator.stream(messages, 0.0, 96, 0, **kw))


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_forced_choice_gets_one_well_formed_call(
    generator: LlamaGenerator, choice: str | dict[str, Any]
) -> None:
    parsed = parse_tool_calls(_reply(generator, QUESTION, tools=[WEATHER], tool_choice=choice))
    assert parsed is not None
    _, calls = parsed
    assert [c.name for c in calls] == ["get_weather"]
    assert "paris" in json.loads(calls[0].arguments)["city"].lower()
    assert generator.last_usage["completion_tokens"] > 0


def test_a_tool_result_in_the_conversation_is_answered_in_text(generator: LlamaGenerator) -> None:
    call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}
    messages = [
        *QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 22 degrees Celsius."},
    ]
    reply = _reply(generator, messages, tools=[WEATHER], tool_choice="none")
    assert "<tool_call>" not in reply
    assert "22" in reply
