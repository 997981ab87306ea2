"""The gateway client's wire details: its error type and the Server-Sent Events of a chat."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx

from services.common.errors import ERROR_TYPES
from services.common.schemas import ChatResponse, SourcesEvent, StepEvent

logger = logging.getLogger(__name__)


class GatewayError(Exception):
    """An error answered by the gateway (or 0 / ``unreachable`` when it could not be reached)."""

    def __init__(self, status_code: int, error: str, error_type: str) -> None:
        super().__init__(f"{error_type}: {error}")
        self.status_code = status_code
        self.error = error
        self.error_type = error_type


@dataclass
class SseEvent:
    """One Server-Sent Event: its name and its (joined) data lines."""

    event: str = "message"
    data: str = ""


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events of a ``text/event-stream`` body given line by line (comments and pings skipped)."""
    name = ""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or name:
                yield SseEvent(event=name or "message", data="\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        # The spec strips exactly one space after the colon.
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    if data:
        yield SseEvent(event=name or "message", data="\n".join(data))


def error_from_response(response: httpx.Response) -> GatewayError:
    """Build the GatewayError of an error response from its ``{error, error_type}`` body."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and "error" in body:
        return GatewayError(
            response.status_code, str(body["error"]), str(body.get("error_type", "http_error"))
        )
    text = response.text.strip()[:500] or response.reason_phrase
    return GatewayError(response.status_code, text, "http_error")


def error_from_event(data: str) -> GatewayError:
    try:
        body = json.loads(data)
    except json.JSONDecodeError:
        body = {"error": data}
    error_type = str(body.get("error_type", "upstream_error"))
    cls = ERROR_TYPES.get(error_type)
    return GatewayError(cls.status_code if cls else 502, str(body.get("error", "")), error_type)


def chat_events(
    lines: Iterable[str],
) -> Iterator[str | StepEvent | SourcesEvent | ChatResponse]:
    """A deep chat's steps, the sources (before generation), token texts, then the response."""
    for event in parse_sse(lines):
        if event.event == "step":
            yield StepEvent.model_validate_json(event.data)
        elif event.event == "sources":
            yield SourcesEvent.model_validate_json(event.data)
        elif event.event == "token":
            text = json.loads(event.data).get("text", "")
            if text:
                yield text
        elif event.event == "end":
            yield ChatResponse.model_validate_json(event.data)
            return
        elif event.event == "error":
            raise error_from_event(event.data)
        else:
            logger.debug("ignoring SSE event %r", event.event)
    raise GatewayError(502, "the answer stream ended before its end event", "upstream_error")
