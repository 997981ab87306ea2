"""Hand a GenerationRequest to an llm worker and read its events back."""

from __future__ import annotations

from collections.abc import Iterator

from services.common.errors import OverloadedError
from services.common.schemas import GenerationRequest, StreamEvent
from services.common.tasks import GENERATE_TASK
from services.gateway.state import GatewayState


def run_on_worker(
    state: GatewayState, request: GenerationRequest, timeout_s: float | None = None
) -> Iterator[StreamEvent]:
    """Enqueue by task name, then yield the stream's events until its end or error."""
    try:
        state.celery.send_task(GENERATE_TASK, args=[request.model_dump(mode="json")])
    except Exception as exc:  # the broker's own errors vary by transport
        raise OverloadedError(f"the generation queue is unavailable: {exc}") from exc
    yield from state.streams.read(
        request.stream_id, timeout_s or state.settings.generation_timeout_s
    )
