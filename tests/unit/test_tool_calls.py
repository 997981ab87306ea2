"""Tool calls as the model writes them, and the tool part of the /v1 request schema."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from services.common.tool_calls import (
    format_tool_call,
    parse_tool_calls,
    prefill_for,
    template_messages,
)
from services.gateway.openai.schemas import OpenAIChatRequest

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_qwen_blocks_parse_into_calls_with_json_string_arguments() -> None:
    text = (
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "巴黎"}}\n'
        "</tool_call>"
    )
    parsed = parse_tool_calls(text)
    assert parsed is not None
    content, calls = parsed
    assert content == "Let me check."
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "巴黎"]


def test_plain_text_is_an_answer_and_a_broken_block_is_none() -> None:
    assert parse_tool_calls("Hello there!") == ("Hello there!", [])
    assert parse_tool_calls('<tool_call>\n{"name": "get_weather", "argu') is None
    assert parse_tool_calls("<tool_call>\n[1, 2]\n</tool_call>") is None


def test_a_forced_prefill_and_the_models_rest_parse_as_the_named_call() -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    text = prefill_for(choice) + '{"city": "Oslo"}}\n</tool_call>'
    parsed = parse_tool_calls(text)
    assert parsed is not None and parsed[1][0].name == "get_weather"
    assert prefill_for("auto") == ""
    required = parse_tool_calls(prefill_for("required") + 'get_weather", "arguments": {}}')
    assert required is not None and required[1][0].name == "get_weather"


def test_bare_calls_count_as_calls_and_other_json_as_text() -> None:
    # llama.cpp drops the special <tool_call> tokens from the text it returns.
    parsed = parse_tool_calls('{"name": "get_weather", "arguments": {"city": "Paris"}}')
    assert parsed is not None and [c.name for c in parsed[1]] == ["get_weather"]
    assert parse_tool_calls('{"name": "Bob"}') == ('{"name": "Bob"}', [])
    prose = '{"name": "f", "arguments": {}} and then prose'
    assert parse_tool_calls(prose) == (prose, [])
    code = '```json\n{"name": "Bob", "age": 3}\n```'  # JSON asked for is an answer
    assert parse_tool_calls(code) == (code, [])


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "search", "arguments": {"query": "q"}',  # the last brace dropped
        '{"name": "search", "arguments": {"query": "q"}}\n{"name": "search", "arguments": {"qu',
        '{"name": "search", "arguments": {"query": "q"}}\n</tool_call>',
        # What the default 1.5B model wrote in `zhiku eval tools` (bench/results/tools.json):
        '```json\n{\n  "name": "search",\n  "arguments": {\n    "query": "q"\n  }\n}\n```',
        '```json\n{\n  "name": "search",\n  "arguments": {\n    "query": "q"\n  }\n}\n`',
        '{{"name": "search", "arguments": {"query": "q"}}}',
    ],
)
def test_what_small_models_write_still_parses(text: str) -> None:
    parsed = parse_tool_calls(text)
    assert parsed is not None
    assert [(c.name, json.loads(c.arguments)) for c in parsed[1]] == [("search", {"query": "q"})]


def test_a_formatted_call_round_trips() -> None:
    parsed = parse_tool_calls(format_tool_call("get_weather", '{"city": "Rome"}'))
    assert parsed is not None
    assert json.loads(parsed[1][0].arguments) == {"city": "Rome"}


def test_templates_get_arguments_as_objects() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    messages = template_messages([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert messages[0]["tool_calls"][0]["function"]["arguments"] == {"a": 1}
    assert call["function"]["arguments"] == '{"a": 1}'  # the caller's message is left as it was


def _request(**fields: object) -> OpenAIChatRequest:
    body = {"model": "zhiku:kb", "messages": [{"role": "user", "content": "hi"}], **fields}
    return OpenAIChatRequest.model_validate(body)


def test_a_request_with_tools_and_a_tool_loop_validates() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    body = _request(messages=messages, tools=[WEATHER], tool_choice="required")
    assert body.tools is not None and body.messages[2].tool_call_id == "c1"


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
        {"tools": [{"type": "retrieval", "function": {"name": "f"}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "x"}}}]},
        {"tools": [WEATHER, WEATHER]},
        {"tools": [WEATHER], "tool_choice": "sometimes"},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"messages": [{"role": "tool", "content": "no id"}]},
    ],
)
def test_malformed_tools_and_choices_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _request(**fields)
