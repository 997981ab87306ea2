"""The chat pipeline: its steps in order, one not-found decision, the slot back however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from services.common.answers import not_found_message
from services.common.backend import create_backend
from services.common.errors import NotReadyError, UpstreamError
from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.models import KnowledgeBase
from services.common.schemas import ChatMessage, ChatResponse, ChunkHit, SourcesEvent
from services.common.settings import Settings
from services.gateway.chat import pipeline
from services.gateway.chat.pipeline import ChatPipeline, grounded
from services.gateway.generation_slots import GenerationSlots, create_generation_slots
from services.gateway.state import GatewayState

QUESTION = "How often is the PP filter replaced?"
PASSAGE = "The PP filter is replaced every six months."


def _hit(dense: float | None, text: str = PASSAGE) -> ChunkHit:
    return ChunkHit(
        chunk_id=7,
        document_id=3,
        document_name="manual.md",
        position=0,
        text=text,
        score=0.9,
        dense_score=dense,
    )


class Fakes:
    """The steps around the pipeline, recording what was asked of them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hits: list[ChunkHit]) -> None:
        self.slots: GenerationSlots = create_generation_slots(
            create_backend(Settings(redis_url=None))
        )
        self.state = cast(GatewayState, SimpleNamespace(settings=Settings(), slots=self.slots))
        self.hits = hits
        self.events = [
            StreamEvent(kind="token", text="Every six months [1]."),
            StreamEvent(
                kind="end",
                usage={"completion_tokens": 5},
                timings={"prompt_eval_ms": 40.0, "generation_ms": 60.0, "first_token_ms": 45.0},
            ),
        ]
        self.calls: list[str] = []
        self.held_while_generating: list[int] = []
        monkeypatch.setattr(pipeline, "hold_generation_slot", self.hold)
        monkeypatch.setattr(pipeline, "standalone_query", self.rewrite)
        monkeypatch.setattr(pipeline, "search_chunks", self.search)
        monkeypatch.setattr(pipeline, "watched_generation", self.generate)

    def hold(self, state: GatewayState) -> Any:
        self.calls.append("slot")
        return self.slots.acquire(1, 1)

    def rewrite(self, state: GatewayState, question: str, history: list[ChatMessage]) -> str:
        self.calls.append("rewrite")
        return question

    def search(self, *args: object) -> list[ChunkHit]:
        self.calls.append("search")
        return self.hits

    def generate(self, state: GatewayState, request: GenerationRequest) -> Iterator[StreamEvent]:
        self.calls.append("generate")
        for event in self.events:
            self.held_while_generating.append(self.slots.in_flight())
            yield event


def _pipeline(fakes: Fakes, question: str = QUESTION) -> ChatPipeline:
    kb = KnowledgeBase(id=1, name="kb", embedding_model="m", embedding_dim=4)
    messages = [ChatMessage(role="user", content=question)]
    return ChatPipeline(fakes.state, kb, messages).start(cast(Any, None))


def test_grounded_is_the_one_not_found_decision_before_and_after_generation() -> None:
    assert grounded([_hit(0.6)], 0.25, QUESTION)
    assert not grounded([_hit(0.1), _hit(None)], 0.25, QUESTION)
    assert not grounded([], 0.25, QUESTION)
    assert grounded([_hit(0.6)], 0.25, QUESTION, "Every six months [1].")
    assert not grounded([_hit(0.6)], 0.25, QUESTION, not_found_message(QUESTION))


def test_an_answer_holds_the_slot_from_the_rewrite_to_the_last_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])
    reply = _pipeline(fakes).answer()
    assert fakes.calls == ["slot", "rewrite", "search", "generate"]
    assert fakes.held_while_generating == [1, 1]
    assert fakes.slots.in_flight() == 0
    assert reply.grounded and reply.usage == {"completion_tokens": 5}
    assert [(c.index, c.chunk_id) for c in reply.citations] == [(1, 7)]


def test_nothing_relevant_answers_not_found_without_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.1)])
    reply = _pipeline(fakes).answer()
    assert "generate" not in fakes.calls
    assert reply.answer == not_found_message(QUESTION)
    assert not reply.grounded and reply.citations == []
    assert fakes.slots.in_flight() == 0


def test_a_failed_rewrite_or_search_gives_the_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])

    def unavailable(*args: object) -> list[ChunkHit]:
        raise NotReadyError("the retriever is not answering")

    monkeypatch.setattr(pipeline, "search_chunks", unavailable)
    with pytest.raises(NotReadyError):
        _pipeline(fakes)
    assert fakes.slots.in_flight() == 0


def test_a_worker_error_raises_and_gives_the_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])
    fakes.events = [StreamEvent(kind="error", text="the model failed", error_type="upstream")]
    with pytest.raises(UpstreamError, match="the model failed"):
        _pipeline(fakes).answer()
    assert fakes.slots.in_flight() == 0


def test_a_stream_left_after_its_first_token_gives_the_slot_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])
    fakes.events.insert(0, StreamEvent(kind="token", text="Every "))

    async def first_token_then_leave() -> StreamEvent | SourcesEvent | ChatResponse:
        events = _pipeline(fakes).stream()
        assert isinstance(await anext(events), SourcesEvent)
        first = await anext(events)
        assert fakes.slots.in_flight() == 1
        await events.aclose()
        return first

    assert asyncio.run(first_token_then_leave()) == fakes.events[0]
    assert fakes.slots.in_flight() == 0


def test_a_whole_stream_ends_with_the_checked_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])

    async def collect() -> list[StreamEvent | SourcesEvent | ChatResponse]:
        return [event async for event in _pipeline(fakes).stream()]

    sources, *tokens, final = asyncio.run(collect())
    assert isinstance(sources, SourcesEvent)
    assert tokens == fakes.events[:1]
    assert isinstance(final, ChatResponse) and final.grounded and final.citations
    assert fakes.slots.in_flight() == 0


def _streamed(
    fakes: Fakes, question: str = QUESTION
) -> list[StreamEvent | SourcesEvent | ChatResponse]:
    async def collect() -> list[StreamEvent | SourcesEvent | ChatResponse]:
        return [event async for event in _pipeline(fakes, question).stream()]

    return asyncio.run(collect())


def test_the_sources_come_first_before_generation_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6), _hit(0.5, "Unrelated. The PP filter costs 20 yuan.")])

    async def first_event() -> StreamEvent | SourcesEvent | ChatResponse:
        events = _pipeline(fakes).stream()
        first = await anext(events)
        await events.aclose()
        return first

    first = asyncio.run(first_event())
    assert "generate" not in fakes.calls  # nothing was asked of the llm worker yet
    assert isinstance(first, SourcesEvent)
    assert [(s.index, s.chunk_id, s.document_name) for s in first.sources] == [
        (1, 7, "manual.md"),
        (2, 7, "manual.md"),
    ]
    # Each passage's quote is its sentence nearest the question.
    assert first.sources[1].quote == "The PP filter costs 20 yuan."


def test_a_not_found_stream_sends_no_sources_first(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _streamed(Fakes(monkeypatch, [_hit(0.1)]))
    assert events[0] == SourcesEvent(sources=[])
    assert isinstance(events[-1], ChatResponse) and not events[-1].grounded


def test_the_reply_times_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch, [_hit(0.6)])
    for reply in (_pipeline(fakes).answer(), _streamed(fakes)[-1]):
        assert isinstance(reply, ChatResponse)
        assert set(reply.timings) == {
            "retrieval_ms",
            "queue_ms",
            "prompt_eval_ms",
            "generation_ms",
            "first_token_ms",
            "checks_ms",
            "total_ms",
        }
        assert reply.timings["prompt_eval_ms"] == 40.0 and reply.timings["generation_ms"] == 60.0
        assert all(ms >= 0 for ms in reply.timings.values())
        assert reply.timings["total_ms"] >= reply.timings["retrieval_ms"]


def test_a_traditional_question_gets_a_traditional_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    passage = "PP 滤芯每六个月更换一次。"
    fakes = Fakes(monkeypatch, [_hit(0.6, passage)])
    fakes.events[0] = StreamEvent(kind="token", text="滤芯每六个月更换一次[1]。")
    sources, token, final = _streamed(fakes, "濾芯多久更換一次？")
    assert isinstance(sources, SourcesEvent) and sources.sources[0].quote == passage
    assert isinstance(token, StreamEvent) and token.text == "濾芯每六個月更換一次[1]。"
    assert isinstance(final, ChatResponse) and final.answer == "濾芯每六個月更換一次[1]。"
    # The checks read the answer as generated; quotes stay as the documents have them.
    assert final.grounded and final.citations[0].quote == passage
    assert final.check.unsupported == 0
