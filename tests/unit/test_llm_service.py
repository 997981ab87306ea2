"""run_generation without a model: which passage text reaches the prompt, and the end event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from llm_worker.generator import LlamaGenerator
from llm_worker.prompts import fixed_turn_count
from llm_worker.service import run_generation
from services.common.generation_schemas import ContextPassage, GenerationRequest, StreamEvent
from services.common.settings import LLMSettings

FILLER = "Unrelated filler about the weather and the sea. " * 8


class FakeGenerator:
    """Answers a fixed text; records what the service asked for."""

    def __init__(self, **settings: Any) -> None:
        self.settings = LLMSettings(grounding_hold=False, **settings)
        self.calls: list[tuple[list[dict[str, str]], int]] = []
        self.last_usage = {"prompt_tokens": 90, "completion_tokens": 3, "total_tokens": 93}
        self.last_timings = {"prompt_eval_ms": 12.0, "generation_ms": 3.0, "cached_tokens": 70.0}

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(
        self, messages: list[dict[str, str]], temperature: Any, max_tokens: Any, fixed: int = 0
    ) -> Iterator[str]:
        self.calls.append((messages, fixed))
        yield from ["Port ", "8000 ", "[2]."]


class ListStream:
    def __init__(self) -> None:
        self.events: list[StreamEvent] = []

    def publish(self, stream_id: str, event: StreamEvent) -> None:
        self.events.append(event)

    def read(self, stream_id: str, timeout_s: float) -> Iterator[StreamEvent]:
        return iter(self.events)

    def cancelled(self, stream_id: str) -> bool:
        return False


def _request(question: str) -> GenerationRequest:
    passages = [
        ContextPassage(index=1, document_name="a.txt", text=FILLER),
        ContextPassage(index=2, document_name="b.txt", text=f"{FILLER}The gateway uses port 8000."),
    ]
    return GenerationRequest(stream_id="s", question=question, passages=passages)


def _run(generator: FakeGenerator, req: GenerationRequest) -> list[StreamEvent]:
    stream = ListStream()
    run_generation(req, stream, cast(LlamaGenerator, generator))
    return stream.events


def test_the_prompt_carries_the_best_sentences_within_the_budget() -> None:
    generator = FakeGenerator(context_tokens=60)
    req = _request("Which port does the gateway use?")
    _run(generator, req)
    messages, fixed = generator.calls[0]
    assert fixed == fixed_turn_count(req) == 7
    last = messages[-1]["content"]
    assert '<document index="2" name="b.txt">' in last  # the index the chunk came with
    assert "The gateway uses port 8000." in last
    assert last.count("Unrelated filler") < 8  # the rest of the chunks was left out


def test_a_zero_budget_sends_the_passages_whole() -> None:
    generator = FakeGenerator(context_tokens=0)
    _run(generator, _request("Which port does the gateway use?"))
    assert generator.calls[0][0][-1]["content"].count("Unrelated filler") == 16


def test_the_end_event_carries_usage_and_timings() -> None:
    events = _run(FakeGenerator(), _request("Which port does the gateway use?"))
    assert [e.kind for e in events] == ["token", "token", "token", "end"]
    end = events[-1]
    assert end.usage["prompt_tokens"] == 90
    assert end.timings["prompt_eval_ms"] == 12.0
    assert end.timings["cached_tokens"] == 70.0
    assert 0 <= end.timings["first_token_ms"] < 1000


def test_a_rewrite_keeps_its_own_fixed_turns() -> None:
    generator = FakeGenerator()
    req = _request("And its port?").model_copy(update={"purpose": "rewrite"})
    _run(generator, req)
    assert generator.calls[0][1] == fixed_turn_count(req) == 5
