"""The typed client of the zhiku gateway's public API, used by the CLI, the web app and bench."""

from services.client.base import DEFAULT_GATEWAY_URL
from services.client.gateway import (
    FINISHED_STAGES,
    SUPPORTED_EXTENSIONS,
    ChatOptions,
    GatewayClient,
    MessageLike,
)
from services.client.sse import GatewayError, SseEvent, error_from_response, parse_sse

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "FINISHED_STAGES",
    "SUPPORTED_EXTENSIONS",
    "ChatOptions",
    "GatewayClient",
    "GatewayError",
    "MessageLike",
    "SseEvent",
    "error_from_response",
    "parse_sse",
]
