"""One chat, from question to checked answer: slot, rewrite, search, generation, checks.

The steps run in that order inside one generator, so the generation slot is held by a single
``with`` from before the query rewrite until the last token, however the chat ends: answered,
failed, not found, or left by a client that went away.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Iterator
from contextlib import aclosing, closing, nullcontext
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool

from services.common.answers import attribute, best_quote, check_answer, not_found_message
from services.common.errors import (
    ERROR_TYPES,
    UpstreamError,
    ValidationFailedError,
    ZhikuError,
)
from services.common.generation_schemas import ContextPassage, GenerationRequest, StreamEvent
from services.common.models import KnowledgeBase
from services.common.schemas import (
    AnswerCheck,
    AnswerMode,
    ChatMessage,
    ChatResponse,
    ChunkHit,
    Citation,
    SearchMode,
    SourcePassage,
    SourcesEvent,
    StepEvent,
)
from services.common.script import to_script_of
from services.gateway.chat.deep import DeepSearch
from services.gateway.chat.rewrite import standalone_query
from services.gateway.chat.worker_watch import hold_generation_slot, watched_generation
from services.gateway.search.service import search_chunks
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

QUOTE_CHARS = 240
# Yielded once the search is done: start() runs the steps up to here, before any reply is sent.
_SEARCHED = StreamEvent(kind="end")
# What the steps yield: a deep chat's searches, the sources, then the worker's events.
PipelineEvent = StreamEvent | StepEvent | SourcesEvent
# What a chat streams to its client: those, then the final response.
ChatEvent = StreamEvent | StepEvent | SourcesEvent | ChatResponse
# What the end event of the llm worker tells of its own time, passed on in ChatResponse.timings.
_WORKER_TIMINGS = ("prompt_eval_ms", "generation_ms", "first_token_ms")


@dataclass(frozen=True)
class ChatOptions:
    """What a caller may choose about one chat; None: the settings' default."""

    top_k: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    mode: SearchMode | None = None
    system_prompt: str | None = None
    answer_mode: AnswerMode = "fast"
    # Deep mode: the knowledge bases the caller sees, which a step may search besides the chat's.
    searchable: tuple[str, ...] = ()


def grounded(hits: list[ChunkHit], min_score: float, question: str, answer: str = "") -> bool:
    """The gateway's one not-found decision: is the chat answered from its passages?

    Before generation (no answer yet): does any passage reach ``min_score``? After it: that,
    and the model did not give the not-found reply itself.
    """
    if not any((h.dense_score or 0.0) >= min_score for h in hits):
        return False
    return not_found_message(question) not in answer


class ChatPipeline:
    """One chat: start() holds a slot, rewrites and searches; answer() or stream() finish it."""

    def __init__(
        self,
        state: GatewayState,
        kb: KnowledgeBase,
        messages: list[ChatMessage],
        options: ChatOptions | None = None,
    ) -> None:
        if messages[-1].role != "user" or not messages[-1].content.strip():
            raise ValidationFailedError("the last message must be a non-empty user message")
        self.state, self.kb, self.options = state, kb, options or ChatOptions()
        self.question = messages[-1].content.strip()
        self.history = [m for m in messages[:-1] if m.role in ("user", "assistant")]
        self.query = self.question  # what was searched: the question, or its standalone rewrite
        self.hits: list[ChunkHit] = []
        self.timings: dict[str, float] = {}  # ms per step, see ChatResponse.timings
        self._started_at = time.monotonic()
        self._steps: Generator[PipelineEvent, None, None] | None = None
        self.deep: DeepSearch | None = None
        if self.options.answer_mode == "deep":
            self.deep = DeepSearch(
                state,
                self.question,
                kb.name,
                self.options.searchable or (kb.name,),
                state.settings.chat.deep_max_steps,
            )

    def start(self, session: Session) -> ChatPipeline:
        """Run the steps up to the search, so that they fail before any reply is sent.

        Raises OverloadedError (429) at once when the llm workers already have as many chats
        as the queue depth allows.
        """
        self._started_at = time.monotonic()
        self._steps = self._run(session)
        next(self._steps)
        return self

    def answer(self) -> ChatResponse:
        """The whole answer at once."""
        tokens: list[str] = []
        usage: dict[str, int] = {}
        with closing(self._started()) as events:
            for event in events:
                if not isinstance(event, StreamEvent):
                    continue  # steps and sources: the response carries them
                if event.kind == "token":
                    tokens.append(event.text)
                elif event.kind == "end":
                    usage = event.usage
                else:
                    raise stream_error(event)
        return self.finish("".join(tokens), usage)

    def sources(self) -> SourcesEvent:
        """The passages the answer will be read from; none when nothing relevant was found."""
        if not grounded(self.hits, self._min_score, self.question):
            return SourcesEvent(sources=[])
        return SourcesEvent(
            sources=[
                SourcePassage.of(i, hit, best_quote(self.question, hit.text, QUOTE_CHARS))
                for i, hit in enumerate(self.hits, start=1)
            ]
        )

    async def stream(self) -> AsyncGenerator[StreamEvent | SourcesEvent | ChatResponse, None]:
        """As stream_with_steps(), without a deep chat's step events (for the OpenAI route)."""
        async with aclosing(self.stream_with_steps()) as events:
            async for event in events:
                if not isinstance(event, StepEvent):
                    yield event

    async def stream_with_steps(self) -> AsyncGenerator[ChatEvent, None]:
        """A deep chat's steps, the sources, token events as they come, then the ChatResponse.

        Errors become error events.
        """
        tokens: list[str] = []
        usage: dict[str, int] = {}
        events = self._started()
        try:
            async for event in iterate_in_threadpool(events):
                if not isinstance(event, StreamEvent):
                    yield event
                elif event.kind == "token":
                    tokens.append(event.text)
                    yield event.model_copy(update={"text": to_script_of(self.question, event.text)})
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
            # Also when the client went away (GeneratorExit lands on a yield above): ending the
            # steps ends the slot's ``with``.
            events.close()
        yield self.finish("".join(tokens), usage)

    def finish(self, answer: str, usage: dict[str, int]) -> ChatResponse:
        """Citations for every [n], pointing at the passage that backs it; then the checks.

        The checks read the answer as generated; the reply gives it in the question's script.
        """
        checks_from = time.monotonic()
        is_grounded = grounded(self.hits, self._min_score, self.question, answer)
        passages = [h.text for h in self.hits]
        mapping = attribute(answer, passages) if is_grounded else {}
        citations = [_citation(n, self.hits[p - 1], answer) for n, p in mapping.items()]
        check = check_answer(answer, passages, mapping) if is_grounded else AnswerCheck()
        self.timings["checks_ms"] = _ms_since(checks_from)
        self.timings["total_ms"] = _ms_since(self._started_at)
        return ChatResponse(
            answer=to_script_of(self.question, answer),
            citations=citations,
            grounded=is_grounded,
            usage=usage,
            query=self.query,
            check=check,
            timings=self.timings,
            steps=self.deep.steps if self.deep else [],
        )

    @property
    def _min_score(self) -> float:
        return self.state.settings.retrieval.min_score

    def _started(self) -> Generator[PipelineEvent, None, None]:
        if self._steps is None:
            raise RuntimeError("ChatPipeline.start() must come before answer() or stream()")
        return self._steps

    def _run(self, session: Session) -> Generator[PipelineEvent, None, None]:
        """The steps in order; the slot (none without a queue depth) is released in one place."""
        with hold_generation_slot(self.state) or nullcontext():
            searching = time.monotonic()
            self.query = standalone_query(self.state, self.question, self.history)
            top_k = self.options.top_k or self.state.settings.retrieval.top_k
            self.hits = search_chunks(
                self.state, session, self.kb, self.query, top_k, self.options.mode
            )
            self.timings["retrieval_ms"] = _ms_since(searching)
            yield _SEARCHED
            if self.deep is not None:
                yield from self._deep_steps(self.deep, top_k)
            yield self.sources()
            if not grounded(self.hits, self._min_score, self.question):
                logger.info(
                    "no chunk reaches %.2f for %r: answering not-found",
                    self._min_score,
                    self.query[:80],
                )
                yield StreamEvent(kind="token", text=not_found_message(self.question))
                yield StreamEvent(kind="end")
                return
            # Fails fast with not_ready when no llm worker is (or stays) alive to answer.
            yield from self._timed(watched_generation(self.state, self._generation_request()))

    def _deep_steps(self, deep: DeepSearch, top_k: int) -> Iterator[StepEvent]:
        """The first search as step 1, then the planner's; the answer reads all their hits."""
        planning = time.monotonic()
        yield deep.record(self.query, self.kb.name, self.hits)
        yield from deep.further_steps(top_k, self.options.mode)
        # As many passages as a fast answer reads: the prompt (and its time) stays the same.
        self.hits = deep.merged(top_k)
        self.timings["deep_steps_ms"] = _ms_since(planning)

    def _timed(self, events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
        """The worker's events; notes the wait for its first one and its own prompt/token ms."""
        sent, first_wait = time.monotonic(), None
        for event in events:
            first_wait = _ms_since(sent) if first_wait is None else first_wait
            if event.kind == "end":
                worker = event.timings
                # The worker's own time to its first token is prompt work, not queueing.
                queued = first_wait - worker.get("first_token_ms", 0.0)
                self.timings["queue_ms"] = round(max(0.0, queued), 1)
                self.timings.update({k: worker[k] for k in _WORKER_TIMINGS if k in worker})
            yield event

    def _generation_request(self) -> GenerationRequest:
        return GenerationRequest(
            stream_id=uuid.uuid4().hex,
            question=self.question,
            history=self.history,
            passages=[ContextPassage.of(i, h) for i, h in enumerate(self.hits, start=1)],
            temperature=self.options.temperature,
            max_tokens=self.options.max_tokens,
            system_prompt=self.options.system_prompt,
        )


def _citation(index: int, hit: ChunkHit, answer: str) -> Citation:
    return Citation.of(index, hit, best_quote(answer, hit.text, QUOTE_CHARS))


def _ms_since(moment: float) -> float:
    return round((time.monotonic() - moment) * 1000, 1)


def stream_error(event: StreamEvent) -> ZhikuError:
    """The error an error event stands for, with its type."""
    cls = ERROR_TYPES.get(event.error_type or "", UpstreamError)
    return cls(event.text or "generation failed")
