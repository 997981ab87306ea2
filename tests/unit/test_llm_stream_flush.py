"""Token events coalesced by time: the first piece at once, later ones joined per interval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from llm_worker import service
from llm_worker.service import coalesce, run_generation
from services.common.generation_schemas import GenerationRequest
from services.common.settings import LLMSettings
from tests.unit.test_llm_service import ListStream


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed_pieces(clock: FakeClock, steps: list[tuple[float, str]]) -> Iterator[str]:
    for at, piece in steps:
        clock.now = at
        yield piece


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(service.time, "monotonic", fake)
    return fake


def test_coalesce_zero_passes_every_piece_through(clock: FakeClock) -> None:
    steps = [(0.0, "a"), (0.001, "b"), (0.002, "c")]
    assert list(coalesce(timed_pieces(clock, steps), 0.0)) == ["a", "b", "c"]


def test_coalesce_joins_pieces_within_the_interval(clock: FakeClock) -> None:
    steps = [
        (0.0, "A"),
        (0.01, "b"),
        (0.02, "c"),
        (0.05, "d"),
        (0.06, "e"),
        (0.2, "f"),
        (0.21, "g"),
    ]
    out = list(coalesce(timed_pieces(clock, steps), 0.05))
    assert out == ["A", "bcd", "ef", "g"]
    assert "".join(out) == "Abcdefg"


def test_coalesce_sends_slow_pieces_one_by_one(clock: FakeClock) -> None:
    steps = [(0.0, "x"), (0.1, "y"), (0.2, "z")]
    assert list(coalesce(timed_pieces(clock, steps), 0.05)) == ["x", "y", "z"]


class FakeGenerator:
    def __init__(self, clock: FakeClock, flush_ms: int) -> None:
        self.settings = LLMSettings(grounding_hold=False, stream_flush_ms=flush_ms)
        self.last_usage: dict[str, int] = {}
        self.last_timings: dict[str, float] = {}
        self._clock = clock

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, *_args: Any) -> Iterator[str]:
        yield from timed_pieces(self._clock, [(0.0, "One"), (0.001, " two"), (0.002, " three")])
        self.last_usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def test_run_generation_publishes_coalesced_tokens_then_end(clock: FakeClock) -> None:
    stream = ListStream()
    req = GenerationRequest(stream_id="s", question="q?")
    run_generation(req, stream, FakeGenerator(clock, flush_ms=40))  # type: ignore[arg-type]
    assert [(e.kind, e.text) for e in stream.events] == [
        ("token", "One"),
        ("token", " two three"),
        ("end", ""),
    ]
    assert stream.events[-1].usage["completion_tokens"] == 3


def test_run_generation_default_publishes_one_event_per_piece(clock: FakeClock) -> None:
    stream = ListStream()
    req = GenerationRequest(stream_id="s", question="q?")
    run_generation(req, stream, FakeGenerator(clock, flush_ms=0))  # type: ignore[arg-type]
    assert [e.text for e in stream.events if e.kind == "token"] == ["One", " two", " three"]
