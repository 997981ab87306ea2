"""Tool calls as text: the ``<tool_call>{"name", "arguments"}</tool_call>`` blocks of Qwen.

The llm worker answers a tool-calling request with text in this form, whichever backend made it
(an OpenAI-compatible server's structured tool_calls are written back into it), and the gateway
parses it into OpenAI's ``tool_calls``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*`*$", re.DOTALL)


@dataclass(frozen=True)
class ParsedToolCall:
    """One call the model made: a function name and its arguments as a JSON object string."""

    name: str
    arguments: str


def format_tool_call(name: str, arguments: str) -> str:
    """The text block the model writes for one call (``arguments``: a JSON string)."""
    try:
        args: Any = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        args = arguments
    payload = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{payload}\n{TOOL_CALL_CLOSE}"


def prefill_for(tool_choice: str | dict[str, Any] | None) -> str:
    """The start of the answer that forces a call: any tool ('required') or the named one."""
    if tool_choice == "required":  # the name's quote too: after the bare tag 0.5B stops
        return f'{TOOL_CALL_OPEN}\n{{"name": "'
    if isinstance(tool_choice, dict):
        name = json.dumps(tool_choice.get("function", {}).get("name", ""))
        return f'{TOOL_CALL_OPEN}\n{{"name": {name}, "arguments": '
    return ""


def _decode(text: str) -> tuple[Any, int] | None:
    """The JSON value ``text`` starts with and where it ends; one missing closing brace (small
    models drop the last one of ``}}``) is forgiven."""
    for suffix in ("", "}"):
        try:
            value, end = json.JSONDecoder().raw_decode(text + suffix)
        except json.JSONDecodeError:
            continue
        return value, min(end, len(text))
    return None


def _parse_block(block: str) -> ParsedToolCall | None:
    decoded = _decode(block)
    if decoded is None:
        return None
    value = decoded[0]
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):  # some models write the arguments already as a JSON string
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError:
            return None
    if not isinstance(args, dict):
        return None
    return ParsedToolCall(value["name"], json.dumps(args, ensure_ascii=False))


def parse_tool_calls(text: str) -> tuple[str, list[ParsedToolCall]] | None:
    """The text before the first block and the calls; None when a block is not a valid call.

    Text without any block is a plain answer, ``(text, [])``, unless it is only bare calls.
    """
    start = text.find(TOOL_CALL_OPEN)
    if start < 0:
        return text, _bare_calls(text)
    calls = [_parse_block(m.group(1)) for m in _BLOCK.finditer(text, start)]
    valid = [c for c in calls if c is not None]
    if len(valid) != len(calls):
        return None
    return text[:start].strip(), valid


def _bare_calls(text: str) -> list[ParsedToolCall]:
    """Calls written without their tags: llama.cpp drops special tokens such as <tool_call> from
    the text it returns, so a call the model starts on its own arrives as bare JSON objects."""
    rest, calls = _unwrapped(text), list[ParsedToolCall]()
    while rest.startswith("{"):
        decoded = _decode(rest)
        if decoded is None:  # cut off by max_tokens: the whole calls before it count
            return calls
        end = decoded[1]
        call = _parse_block(rest[:end])
        if call is None or ('"arguments"' not in rest[:end] and '"parameters"' not in rest[:end]):
            return []
        calls.append(call)
        rest = rest[end:].strip().removeprefix(TOOL_CALL_CLOSE).strip()
    return calls if not rest else []


def _unwrapped(text: str) -> str:
    """Bare calls as Qwen2.5 also writes them: inside a Markdown code fence (```json …```,
    its end sometimes cut), or with the template's doubled braces copied (``{{"name": …}}}``)."""
    rest = text.strip()
    fenced = _FENCE.match(rest)
    if fenced:
        rest = fenced.group(1).strip()
    if rest.startswith("{{") and rest.endswith("}}"):
        rest = rest[1:-1]
    return rest


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages as chat templates read them: tool-call arguments as objects, not strings."""
    out = []
    for message in messages:
        calls = message.get("tool_calls")
        if calls:
            message = {
                **message,
                "tool_calls": [
                    {**c, "function": {**c["function"], "arguments": _loads(c["function"])}}
                    for c in calls
                ],
            }
        out.append(message)
    return out


def _loads(function: dict[str, Any]) -> Any:
    arguments = function.get("arguments") or "{}"
    try:
        return json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        return arguments
