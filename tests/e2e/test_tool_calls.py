"""Tool calling on /v1/chat/completions with the openai client, every process running."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.common.schemas import ErrorPublic
from tests.e2e.conftest import DATA, RunningSuite, upload_and_wait

pytestmark = pytest.mark.e2e

KB = "e2e-tools"
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
FORCED: Any = {"type": "function", "function": {"name": "get_weather"}}
ASK = [{"role": "user", "content": "What is the weather in Paris right now?"}]


@pytest.fixture(scope="module")
def openai_client(running_suite: RunningSuite) -> Any:
    from openai import OpenAI

    client = running_suite.client
    created = client.post("/api/v1/knowledge-bases", json={"name": KB, "description": "tools"})
    assert created.status_code == 201, created.text
    files = [("files", ("en_report.txt", (DATA / "en_report.txt").read_bytes(), "text/plain"))]
    upload_and_wait(client, KB, files, timeout_s=180)
    return OpenAI(base_url=f"{running_suite.gateway_url}/v1", api_key="unused", timeout=300)


@pytest.mark.parametrize("choice", ["required", FORCED])
def test_a_forced_choice_returns_well_formed_tool_calls(openai_client: Any, choice: Any) -> None:
    completion = openai_client.chat.completions.create(
        model=f"zhiku:{KB}", messages=ASK, tools=[WEATHER], tool_choice=choice
    )
    choice0 = completion.choices[0]
    assert choice0.finish_reason == "tool_calls"
    (call,) = choice0.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert "paris" in json.loads(call.function.arguments)["city"].lower()


def test_streamed_tool_calls_arrive_as_deltas(openai_client: Any) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model=f"zhiku:{KB}", messages=ASK, tools=[WEATHER], tool_choice=FORCED, stream=True
        )
    )
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert "paris" in json.loads(arguments)["city"].lower()
    assert {d.index for d in deltas} == {0}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_none_gets_a_plain_answer_and_a_tool_result_is_answered(openai_client: Any) -> None:
    plain = openai_client.chat.completions.create(
        model=f"zhiku:{KB}", messages=ASK, tools=[WEATHER], tool_choice="none"
    )
    assert plain.choices[0].finish_reason == "stop"
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content
    first = openai_client.chat.completions.create(
        model=f"zhiku:{KB}", messages=ASK, tools=[WEATHER], tool_choice=FORCED
    )
    call = first.choices[0].message.tool_calls[0]
    follow_up = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 degrees Celsius."},
    ]
    final = openai_client.chat.completions.create(
        model=f"zhiku:{KB}", messages=follow_up, tools=[WEATHER], tool_choice="none"
    )
    assert final.choices[0].finish_reason == "stop"
    assert "22" in (final.choices[0].message.content or "")


def test_the_built_in_search_answers_from_the_knowledge_base(openai_client: Any) -> None:
    completion = openai_client.chat.completions.create(
        model=f"zhiku:{KB}",
        messages=[{"role": "user", "content": "At what altitude is the observatory?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "search_knowledge_base"}},
    )
    text = completion.choices[0].message.content or ""
    assert "2,840" in text or "2840" in text
    assert (completion.model_extra or {}).get("zhiku_tool") == "search_knowledge_base"


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [{"type": "function", "function": {"name": "no spaces allowed"}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        {"tools": [WEATHER], "tool_choice": "always"},
    ],
)
def test_bad_tools_are_4xx_with_an_error_type(
    running_suite: RunningSuite, openai_client: Any, fields: dict[str, Any]
) -> None:
    body = {"model": f"zhiku:{KB}", "messages": ASK, **fields}
    response = running_suite.client.post("/v1/chat/completions", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert ErrorPublic.model_validate(response.json()).error_type == "validation_error"
