"""Deep chat: after the first search, the model may search again before it answers.

A question that joins several (services.common.planning.question_parts) has each part searched
on its own first, with no planning. Each further step asks the llm worker for a one-line plan
(services.common.planning): search a reformulated query, maybe in another knowledge base the
caller sees, or answer. The loop stops at ZHIKU_CHAT__DEEP_MAX_STEPS searches, at a repeated
search, or when the model answers; the answer is then generated over the passages of every step,
merged, with the prompt of a fast chat (a prompt of its own, one line per part, made the 1.5B
model answer both parts of 13 % of joined questions, against 43 % now: README, Deep answers).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from services.common.errors import ZhikuError
from services.common.generation_schemas import GenerationRequest
from services.common.models import KnowledgeBase
from services.common.planning import (
    ANSWER,
    PlanDecision,
    parse_plan,
    plan_turn,
    question_parts,
    snippet,
)
from services.common.schemas import ChunkHit, SearchMode, StepEvent, StepHit
from services.gateway.chat.worker_calls import short_generation
from services.gateway.search.service import search_chunks
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

PLAN_TIMEOUT_S = 60.0
PLAN_MAX_TOKENS = 48
HITS_PER_EVENT = 3  # a step event tells of its best few hits; the answer sees them all
SNIPPETS_PER_STEP = 2  # what the planner is shown of each step


@dataclass
class DeepSearch:
    """The searches of one deep chat, bounded by ``max_steps``; ``steps`` grows as they run."""

    state: GatewayState
    question: str
    chat_kb: str
    searchable: tuple[str, ...]  # the knowledge bases the caller sees, the chat's first
    max_steps: int
    steps: list[StepEvent] = field(default_factory=list)
    found: list[list[ChunkHit]] = field(default_factory=list)
    parts: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.parts = question_parts(self.question)

    def record(self, query: str, kb: str, hits: list[ChunkHit]) -> StepEvent:
        """A search done: kept for the planner and the answer, returned as its event."""
        shown = [
            StepHit(chunk_id=h.chunk_id, document_name=h.document_name, score=round(h.score, 4))
            for h in hits[:HITS_PER_EVENT]
        ]
        event = StepEvent(step=len(self.steps) + 1, query=query, knowledge_base=kb, hits=shown)
        self.steps.append(event)
        self.found.append(hits)
        return event

    def further_steps(self, top_k: int, mode: SearchMode | None) -> Iterator[StepEvent]:
        """The searches after the first: each part of the question, then as the planner asks."""
        for part in self.parts:
            if len(self.steps) >= self.max_steps:
                return
            if not any(_same(s.query, part) for s in self.steps):
                yield self.record(
                    part, self.chat_kb, search_in(self.state, self.chat_kb, part, top_k, mode)
                )
        while len(self.steps) < self.max_steps:
            decision = self.plan()
            if decision.answers or decision.query is None:
                return
            kb = self._allowed(decision.knowledge_base)
            if any(_same(s.query, decision.query) and s.knowledge_base == kb for s in self.steps):
                logger.info("deep chat: the planner repeats %r, answering", decision.query[:80])
                return
            hits = search_in(self.state, kb, decision.query, top_k, mode)
            yield self.record(decision.query, kb, hits)

    def plan(self) -> PlanDecision:
        """The planner's next step; answering when the worker fails or says nothing usable."""
        found = [
            " / ".join(snippet(h.text) for h in hits[:SNIPPETS_PER_STEP]) for hits in self.found
        ]
        kbs = ", ".join(f"{n} (this chat)" if n == self.chat_kb else n for n in self.searchable)
        request = GenerationRequest(
            stream_id=uuid.uuid4().hex,
            purpose="plan",
            question=plan_turn(self.question, kbs, self.steps, found),
            max_tokens=PLAN_MAX_TOKENS,
        )
        try:
            reply = short_generation(self.state, request, PLAN_TIMEOUT_S)
        except ZhikuError as exc:
            logger.warning("deep chat planning failed, answering from what was found: %s", exc)
            return ANSWER
        decision = parse_plan(reply)
        logger.info("deep chat step %d: planner said %r", len(self.steps) + 1, reply[:120])
        return decision

    def merged(self, cap: int) -> list[ChunkHit]:
        """Every step's hits, best of each step first (round robin), each chunk once."""
        seen: set[tuple[str, int]] = set()
        merged: list[ChunkHit] = []
        for rank in range(max((len(h) for h in self.found), default=0)):
            for step, hits in zip(self.steps, self.found, strict=True):
                if rank < len(hits) and (step.knowledge_base, hits[rank].chunk_id) not in seen:
                    seen.add((step.knowledge_base, hits[rank].chunk_id))
                    merged.append(hits[rank])
        return merged[:cap]

    def _allowed(self, name: str | None) -> str:
        """The knowledge base a step searches: one the caller sees, else the chat's own."""
        if name is None or name == self.chat_kb:
            return self.chat_kb
        if name not in self.searchable:
            logger.info("deep chat: %r is not the caller's, searching %r", name, self.chat_kb)
            return self.chat_kb
        return name


def search_in(
    state: GatewayState, kb_name: str, query: str, top_k: int, mode: SearchMode | None
) -> list[ChunkHit]:
    """A step's search, by knowledge base name; none when it was deleted since the chat began."""
    # The request's session may be closed once the reply streams: a session of its own.
    with state.sessions() as session:
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == kb_name))
        if kb is None:
            return []
        return search_chunks(state, session, kb, query, top_k, mode)


def _same(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())
