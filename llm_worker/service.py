"""Generation logic behind the Celery task: prompt, stream tokens, always finish the stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from contextlib import closing

from llm_worker.context import select_context
from llm_worker.engines import TextGenerator
from llm_worker.grounding import guard_first_sentence
from llm_worker.prompts import build_messages, build_rewrite_messages, fixed_turn_count
from services.common.answers import not_found_message
from services.common.errors import UpstreamError, ZhikuError
from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.planning import build_plan_messages, plan_fixed_turns
from services.common.streams import TokenStream

logger = logging.getLogger(__name__)

# How often the worker asks whether the gateway cancelled the stream (a Redis EXISTS, or one
# indexed SELECT embedded): cheap at this rate, and at most this much generation is wasted.
CANCEL_CHECK_S = 0.25
CANCELLED = "cancelled"  # the end event's text when the reader went away before the end


class CancelWatch:
    """Whether the stream's reader cancelled it, asked at most every ``interval_s``."""

    def __init__(self, stream: TokenStream, stream_id: str, interval_s: float = CANCEL_CHECK_S):
        self._stream, self._stream_id, self._interval_s = stream, stream_id, interval_s
        self._next_check = 0.0
        self.cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now >= self._next_check:
            self._next_check = now + self._interval_s
            self.cancelled = self._stream.cancelled(self._stream_id)
        return self.cancelled


def publish_error(stream: TokenStream, stream_id: str, exc: BaseException) -> None:
    """Tell the waiting gateway why generation failed, so it never waits for a timeout."""
    err = exc if isinstance(exc, ZhikuError) else UpstreamError(f"generation failed: {exc}")
    event = StreamEvent(kind="error", text=err.message, error_type=err.error_type)
    try:
        stream.publish(stream_id, event)
    except Exception:
        logger.exception("stream %s: could not publish the error event", stream_id)


def _pieces(req: GenerationRequest, generator: TextGenerator) -> Iterator[str]:
    """The answer behind the grounding check, or a rewritten query (short, deterministic)."""
    if req.purpose == "tools":  # the client's conversation in the model's own template
        tools, choice = req.tools, req.tool_choice
        return generator.stream(req.chat, req.temperature, req.max_tokens, 0, tools, choice)
    fixed = fixed_turn_count(req)
    if req.purpose == "rewrite":
        return generator.stream(build_rewrite_messages(req), 0.0, req.max_tokens or 64, fixed)
    if req.purpose == "plan":
        messages = build_plan_messages(req.question)
        return generator.stream(messages, 0.0, req.max_tokens or 48, plan_fixed_turns())
    budget = generator.settings.context_tokens
    passages = select_context(req.question, req.passages, budget, generator.count_tokens)
    messages = build_messages(req.model_copy(update={"passages": passages}), req.system_prompt)
    pieces = generator.stream(messages, req.temperature, req.max_tokens, fixed)
    if not generator.settings.grounding_hold:
        return pieces  # streamed as generated; the gateway's citation check still marks it
    # Checked against the whole chunks, as the gateway checks the answer.
    texts = [p.text for p in req.passages]
    support = generator.settings.grounding_support
    return guard_first_sentence(pieces, texts, not_found_message(req.question), support)


def coalesce(pieces: Iterator[str], flush_s: float) -> Generator[str, None, None]:
    """The first piece at once, then the pieces that arrive within ``flush_s`` joined into one.

    Publishing costs a database commit or a Redis round trip per event, which on a GPU takes as
    long as generating a token (bench/results/gpu.md); a slow CPU's pieces still go out one by one.
    """
    if flush_s <= 0:
        yield from pieces
        return
    held: list[str] = []
    last: float | None = None
    for piece in pieces:
        held.append(piece)
        now = time.monotonic()
        if last is None or now - last >= flush_s:
            yield "".join(held)
            held.clear()
            last = now
    if held:
        yield "".join(held)


def run_generation(req: GenerationRequest, stream: TokenStream, generator: TextGenerator) -> None:
    """Publish token events (one per piece, or coalesced), then an end event, or an error event."""
    started = time.monotonic()
    flush_s = generator.settings.stream_flush_ms / 1000
    cancelled = CancelWatch(stream, req.stream_id)
    first_token_ms: float | None = None
    try:
        if cancelled():  # queued while its reader gave up: not even the prompt is evaluated
            logger.info("stream %s: cancelled by its reader before generation", req.stream_id)
            stream.publish(req.stream_id, StreamEvent(kind="end", text=CANCELLED))
            return
        with closing(coalesce(_pieces(req, generator), flush_s)) as pieces:
            for piece in pieces:
                if cancelled():
                    break  # closing the pieces closes the llama stream (its lock, its usage)
                if first_token_ms is None:  # after the grounding hold: what the reader waits for
                    first_token_ms = round((time.monotonic() - started) * 1000, 1)
                stream.publish(req.stream_id, StreamEvent(kind="token", text=piece))
        usage = dict(generator.last_usage)
        timings = {**generator.last_timings, "first_token_ms": first_token_ms or 0.0}
        end = StreamEvent(
            kind="end",
            usage=usage,
            timings=timings,
            text=CANCELLED if cancelled.cancelled else "",
        )
        stream.publish(req.stream_id, end)
    except ZhikuError as exc:
        logger.warning("stream %s: %s (%s)", req.stream_id, exc.message, exc.error_type)
        publish_error(stream, req.stream_id, exc)
        return
    except Exception as exc:
        logger.exception("stream %s: generation failed", req.stream_id)
        publish_error(stream, req.stream_id, exc)
        return
    logger.info(
        "stream %s: %s%s prompt (%s cached) + %s completion tokens in %.1f s, first token %.0f ms",
        req.stream_id,
        "cancelled by its reader after " if cancelled.cancelled else "",
        usage.get("prompt_tokens"),
        int(timings.get("cached_tokens", 0)),
        usage.get("completion_tokens"),
        time.monotonic() - started,
        first_token_ms or 0.0,
    )
