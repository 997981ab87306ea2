"""The chat's events on the wire: zhiku's SSE and the OpenAI-compatible chunks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from services.common.generation_schemas import StreamEvent
from services.common.schemas import ChatResponse, ChunkHit, Citation, SourcePassage, SourcesEvent
from services.gateway.chat import service as chat_service
from services.gateway.openai import service as openai_service

PASSAGE = SourcePassage(
    index=1,
    chunk_id=7,
    document_id=3,
    document_name="manual.md",
    quote="Every six months.",
    score=0.9,
)
FINAL = ChatResponse(
    answer="Every six months [1].",
    citations=[Citation(**PASSAGE.model_dump())],
    grounded=True,
    timings={"retrieval_ms": 80.0, "total_ms": 900.0},
)


async def _events() -> AsyncIterator[StreamEvent | SourcesEvent | ChatResponse]:
    yield SourcesEvent(sources=[PASSAGE])
    yield StreamEvent(kind="token", text="Every six months [1].")
    yield FINAL


def test_the_sse_stream_names_sources_tokens_and_end() -> None:
    async def collect() -> list[tuple[str | None, str]]:
        return [(e.event, str(e.data)) async for e in chat_service._sse(_events())]

    events = asyncio.run(collect())
    assert [name for name, _ in events] == ["sources", "token", "end"]
    assert SourcesEvent.model_validate_json(events[0][1]).sources == [PASSAGE]
    assert ChatResponse.model_validate_json(events[2][1]).timings == FINAL.timings


def test_the_openai_stream_carries_the_sources_on_its_first_chunk() -> None:
    async def collect() -> list[str]:
        events = openai_service._chunks("zhiku:kb", _events(), "c1", 0)
        return [str(event.data) async for event in events]

    lines = asyncio.run(collect())
    assert lines[-1] == "[DONE]"
    first, token, last = (json.loads(line) for line in lines[:-1])
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [s["chunk_id"] for s in first["zhiku_sources"]] == [7]
    assert "zhiku_sources" not in token and "zhiku_sources" not in last
    assert token["choices"][0]["delta"]["content"] == "Every six months [1]."
    assert last["choices"][0]["finish_reason"] == "stop" and last["citations"][0]["index"] == 1


def test_the_schemas_round_trip_and_default_to_no_timings() -> None:
    hit = ChunkHit(
        chunk_id=7, document_id=3, document_name="manual.md", position=0, text="x", score=0.9
    )
    passage = SourcePassage.of(1, hit, "Every six months.")
    assert isinstance(passage, SourcePassage) and passage == PASSAGE
    event = SourcesEvent(sources=[passage])
    assert SourcesEvent.model_validate_json(event.model_dump_json()) == event
    assert ChatResponse(answer="a", citations=[], grounded=False).timings == {}
    assert ChatResponse.model_validate_json(FINAL.model_dump_json()).timings == FINAL.timings
