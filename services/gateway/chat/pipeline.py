"""Chat: retrieve, hand the passages to an llm worker, relay its tokens, map [n] to chunks."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool

from services.common.answers import attribute, best_quote, check_answer, not_found_message
from services.common.errors import (
    ERROR_TYPES,
    UpstreamError,
    ValidationFailedError,
    ZhikuError,
)
from services.common.models import KnowledgeBase
from services.common.schemas import (
    AnswerCheck,
    ChatMessage,
    ChatResponse,
    ChunkHit,
    Citation,
    ContextPassage,
    GenerationRequest,
    SearchMode,
    StreamEvent,
)
from services.gateway.chat.rewrite import standalone_query
from services.gateway.chat.worker_watch import hold_generation_slot, watched_generation
from services.gateway.generation_slots import Slot
from services.gateway.search.service import search_chunks
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

QUOTE_CHARS = 240


@dataclass
class PreparedChat:
    question: str
    query: str  # what was searched: the question, or its standalone rewrite
    hits: list[ChunkHit]
    request: GenerationRequest | None = None
    tokens: list[str] = field(default_factory=list)
    slot: Slot | None = None  # held from before the rewrite until the last token

    def release(self) -> None:
        if self.slot is not None:
            self.slot.release()


def prepare_chat(
    state: GatewayState,
    session: Session,
    kb: KnowledgeBase,
    messages: list[ChatMessage],
    top_k: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    mode: SearchMode | None = None,
    system_prompt: str | None = None,
) -> PreparedChat:
    """Retrieve for the last user message; no generation when nothing relevant was found.

    Raises OverloadedError (429) at once when the llm workers already have as many chats as
    the queue depth allows; the slot taken here is released by answer() or stream_events().
    """
    if messages[-1].role != "user" or not messages[-1].content.strip():
        raise ValidationFailedError("the last message must be a non-empty user message")
    question = messages[-1].content.strip()
    history = [m for m in messages[:-1] if m.role in ("user", "assistant")]
    slot = hold_generation_slot(state)
    try:
        query = standalone_query(state, question, history)
        top_k = top_k or state.settings.retrieval.top_k
        hits = search_chunks(state, session, kb, query, top_k, mode)
    except BaseException:
        if slot is not None:
            slot.release()
        raise
    min_score = state.settings.retrieval.min_score
    if not any((h.dense_score or 0.0) >= min_score for h in hits):
        logger.info("no chunk reaches %.2f for %r: answering not-found", min_score, query[:80])
        if slot is not None:
            slot.release()
        return PreparedChat(question, query, [])
    request = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        question=question,
        history=history,
        passages=[
            ContextPassage(index=i, document_name=h.document_name, text=h.text)
            for i, h in enumerate(hits, start=1)
        ],
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
    )
    return PreparedChat(question, query, hits, request, slot=slot)


def generate(state: GatewayState, chat: PreparedChat) -> Iterator[StreamEvent]:
    """The worker's events; the not-found reply directly when there is nothing to ground on."""
    if chat.request is None:
        yield StreamEvent(kind="token", text=not_found_message(chat.question))
        yield StreamEvent(kind="end")
        return
    # Fails fast with not_ready when no llm worker is (or stays) alive to answer.
    yield from watched_generation(state, chat.request)


def finish(chat: PreparedChat, answer: str, usage: dict[str, int]) -> ChatResponse:
    """Citations for every [n], pointing at the passage that backs it; then the support check."""
    grounded = bool(chat.hits) and not_found_message(chat.question) not in answer
    passages = [h.text for h in chat.hits]
    mapping = attribute(answer, passages) if grounded else {}
    citations = [
        Citation(
            index=n,
            chunk_id=chat.hits[p - 1].chunk_id,
            document_id=chat.hits[p - 1].document_id,
            document_name=chat.hits[p - 1].document_name,
            quote=best_quote(answer, chat.hits[p - 1].text, QUOTE_CHARS),
            score=chat.hits[p - 1].score,
        )
        for n, p in mapping.items()
    ]
    return ChatResponse(
        answer=answer,
        citations=citations,
        grounded=grounded,
        usage=usage,
        query=chat.query,
        check=check_answer(answer, passages, mapping) if grounded else AnswerCheck(),
    )


def answer(state: GatewayState, chat: PreparedChat) -> ChatResponse:
    """The whole answer at once."""
    usage: dict[str, int] = {}
    try:
        for event in generate(state, chat):
            if event.kind == "token":
                chat.tokens.append(event.text)
            elif event.kind == "end":
                usage = event.usage
            else:
                raise _stream_error(event)
    finally:
        chat.release()
    return finish(chat, "".join(chat.tokens), usage)


def _stream_error(event: StreamEvent) -> ZhikuError:
    cls = ERROR_TYPES.get(event.error_type or "", UpstreamError)
    return cls(event.text or "generation failed")


async def stream_events(
    state: GatewayState, chat: PreparedChat
) -> AsyncIterator[StreamEvent | ChatResponse]:
    """Token events as they come, then the final ChatResponse; errors become error events."""
    usage: dict[str, int] = {}
    try:
        async for event in iterate_in_threadpool(generate(state, chat)):
            if event.kind == "token":
                chat.tokens.append(event.text)
                yield event
            elif event.kind == "end":
                usage = event.usage
            else:
                yield event
                return
    except ZhikuError as exc:
        logger.warning("chat stream failed: %s", exc.message)
        yield StreamEvent(kind="error", text=exc.message, error_type=exc.error_type)
        return
    finally:
        # Also when the client went away: GeneratorExit lands on a yield above.
        chat.release()
    yield finish(chat, "".join(chat.tokens), usage)
