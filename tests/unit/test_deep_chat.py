"""Deep chat: the planner's replies as parsed, and the step loop's bound, repeats and scopes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.generation_schemas import GenerationRequest, StreamEvent
from services.common.models import Conversation, KnowledgeBase
from services.common.planning import (
    build_plan_messages,
    parse_plan,
    plan_turn,
    question_parts,
)
from services.common.schemas import ChatResponse, ChunkHit, SearchMode, StepEvent, StepHit
from services.common.settings import Settings
from services.gateway.chat import deep, worker_calls
from services.gateway.chat.deep import DeepSearch
from services.gateway.conversations.service import append_turns, message_public
from services.gateway.state import GatewayState


@pytest.mark.parametrize(
    ("reply", "query", "kb"),
    [
        ("SEARCH: 天工X9 的额定功率", "天工X9 的额定功率", None),
        ("search: return window | KB: policies", "return window", "policies"),
        ('  `SEARCH: "warranty length"`\nANSWER', "warranty length", None),
        ("搜索：X9 保修期 KB: 售后", "X9 保修期", "售后"),
        ("Let me think.\nSEARCH: Aurora founding year", "Aurora founding year", None),
    ],
)
def test_a_search_line_gives_its_query_and_knowledge_base(
    reply: str, query: str, kb: str | None
) -> None:
    decision = parse_plan(reply)
    assert (decision.query, decision.knowledge_base) == (query, kb)
    assert not decision.answers


@pytest.mark.parametrize(
    "reply", ["ANSWER", "answer.", "", "The documents say 72 W [1].", "SEARCH:   ", "回答"]
)
def test_anything_but_a_search_line_means_answer(reply: str) -> None:
    assert parse_plan(reply).answers


def test_the_plan_prompt_ends_with_the_gateways_turn() -> None:
    turn = plan_turn("X 和 Y 分别是什么？", "kb (this chat)", [], [])
    messages = build_plan_messages(turn)
    assert messages[0]["role"] == "system" and "SEARCH" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": turn}
    assert turn.startswith("question: X 和 Y 分别是什么？") and turn.endswith("next:")


def _hit(chunk_id: int, text: str) -> ChunkHit:
    return ChunkHit(
        chunk_id=chunk_id,
        document_id=chunk_id,
        document_name=f"doc{chunk_id}.md",
        position=0,
        text=text,
        score=0.5,
        dense_score=0.5,
    )


class Worker:
    """The llm worker and retriever around the loop: planner replies given as real strings."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, replies: Iterator[str]) -> None:
        self.replies = replies
        self.plans: list[GenerationRequest] = []
        self.searches: list[tuple[str, str]] = []
        monkeypatch.setattr(worker_calls, "run_on_worker", self.run)
        monkeypatch.setattr(deep, "search_in", self.search)

    def run(
        self, state: object, request: GenerationRequest, timeout: float
    ) -> Iterator[StreamEvent]:
        self.plans.append(request)
        yield StreamEvent(kind="token", text=next(self.replies))
        yield StreamEvent(kind="end")

    def search(
        self, state: object, kb: str, query: str, top_k: int, mode: SearchMode | None
    ) -> list[ChunkHit]:
        self.searches.append((kb, query))
        return [_hit(len(self.searches) * 10 + i, f"{query} passage {i}") for i in range(top_k)]


ONE_THING = "X 是什么？"
JOINED = "请分别回答：1. X 是什么？ 2. Y 在哪里？"


def _deep(
    max_steps: int, searchable: tuple[str, ...] = ("mine",), question: str = ONE_THING
) -> DeepSearch:
    state = cast(GatewayState, SimpleNamespace(settings=Settings()))
    search = DeepSearch(state, question, "mine", searchable, max_steps)
    search.record(question, "mine", [_hit(1, "X is a thing.")])
    return search


def test_a_planner_that_keeps_searching_stops_at_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = Worker(monkeypatch, (f"SEARCH: part {n} of the question" for n in range(100)))
    search = _deep(max_steps=3)
    events = list(search.further_steps(top_k=2, mode=None))
    assert [e.step for e in events] == [2, 3]
    assert len(search.steps) == 3 and len(worker.plans) == 2
    assert all(r.purpose == "plan" for r in worker.plans)
    # The second plan is shown what the first further step found.
    assert 'searched:\n1. "X 是什么' in worker.plans[1].question
    assert '2. "part 0 of the question" in mine' in worker.plans[1].question


def test_the_loop_ends_when_the_planner_answers_or_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Worker(monkeypatch, iter(["SEARCH: Y", "SEARCH:  y "]))
    search = _deep(max_steps=5)
    assert [e.query for e in search.further_steps(top_k=1, mode=None)] == ["Y"]
    Worker(monkeypatch, iter(["ANSWER"]))
    assert list(_deep(max_steps=5).further_steps(top_k=1, mode=None)) == []


def test_a_step_cannot_search_a_knowledge_base_the_caller_does_not_see(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replies = iter(["SEARCH: budget | KB: theirs", "SEARCH: manual | KB: shared"])
    worker = Worker(monkeypatch, replies)
    search = _deep(max_steps=3, searchable=("mine", "shared"))
    events = list(search.further_steps(top_k=1, mode=None))
    assert worker.searches == [("mine", "budget"), ("shared", "manual")]
    assert [e.knowledge_base for e in events] == ["mine", "shared"]
    assert "knowledge bases: mine (this chat), shared" in worker.plans[0].question


def test_merged_hits_take_each_steps_best_first_once(monkeypatch: pytest.MonkeyPatch) -> None:
    search = _deep(max_steps=3)
    search.record("Y", "mine", [_hit(2, "Y."), _hit(1, "X is a thing."), _hit(3, "Y too.")])
    assert [h.chunk_id for h in search.merged(cap=10)] == [1, 2, 3]
    assert [h.chunk_id for h in search.merged(cap=2)] == [1, 2]


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        (JOINED, ["X 是什么？", "Y 在哪里？"]),
        ("Answer both: 1. Who is X? 2. Where is Y?", ["Who is X?", "Where is Y?"]),
        (
            "天工X7 和 天工X9 的额定功率分别是多少？",
            ["天工X7 的额定功率是多少？", "天工X9 的额定功率是多少？"],
        ),
        ("X 和 Y 分别是什么？", ["X 是什么？", "Y 是什么？"]),
        ("What is X? Where is Y?", ["What is X?", "Where is Y?"]),
        ("Who directs Aurora Ridge Observatory?", []),
        ("X7 重 3.5 kg，1998年和2007年发生了什么？", []),
    ],
)
def test_a_joined_question_is_split_into_its_parts(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


def test_each_part_is_searched_before_the_planner_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = Worker(monkeypatch, iter(["SEARCH: Y 的别名", "ANSWER"]))
    search = _deep(max_steps=4, question=JOINED)
    events = list(search.further_steps(top_k=2, mode=None))
    assert [e.query for e in events] == ["X 是什么？", "Y 在哪里？", "Y 的别名"]
    assert worker.searches[:2] == [("mine", "X 是什么？"), ("mine", "Y 在哪里？")]
    assert len(worker.plans) == 1  # the planner only after the parts
    # The answer's passages: every step's best first, the question's own included.
    assert [h.chunk_id for h in search.merged(cap=4)] == [1, 10, 20, 30]


def test_the_parts_stay_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker(monkeypatch, iter([]))
    search = _deep(max_steps=2, question=JOINED)
    assert [e.query for e in search.further_steps(top_k=1, mode=None)] == ["X 是什么？"]
    assert worker.plans == []


def test_a_saved_deep_answer_keeps_its_steps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    upgrade_database(url)  # the migrations, the steps column included
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        kb = KnowledgeBase(name="kb", description="", embedding_model="m", embedding_dim=4)
        session.add(kb)
        session.flush()
        conv = Conversation(knowledge_base_id=kb.id, title="")
        session.add(conv)
        session.commit()
        conv_id = conv.id
    steps = [
        StepEvent(step=1, query=JOINED, knowledge_base="kb"),
        StepEvent(
            step=2,
            query="Y 在哪里？",
            knowledge_base="kb",
            hits=[StepHit(chunk_id=7, document_name="y.md", score=0.8)],
        ),
    ]
    append_turns(
        sessions,
        conv_id,
        JOINED,
        ChatResponse(answer="X [1]。Y [2]。", citations=[], grounded=True, steps=steps),
    )
    append_turns(
        sessions, conv_id, "X 是什么？", ChatResponse(answer="X [1]。", citations=[], grounded=True)
    )
    with sessions() as session:
        rows = session.get_one(Conversation, conv_id).messages
        assert [message_public(r).steps for r in rows] == [[], steps, [], []]
    engine.dispose()
