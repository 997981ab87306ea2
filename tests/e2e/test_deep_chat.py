"""Deep chat end to end: steps stream before the answer, stay bounded and within the key's scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest

from services.client.sse import parse_sse
from services.common.schemas import ChatResponse, ErrorPublic, SourcesEvent, StepEvent
from services.common.settings import Settings
from tests.e2e.conftest import KeyedSuite, wait_jobs

pytestmark = pytest.mark.e2e

MANUAL = (
    "# X7 净水器手册\n\n"
    "X7 净水器的滤芯每 6 个月更换一次。更换前请先关闭进水阀。\n\n"
    "X7 的额定功率为 36 瓦，工作水压 0.1 至 0.4 兆帕。\n"
)
OTHER = "# X7 配件\n\nX7 净水器的滤芯型号为 PP-700，由售后部供应。\n"
QUESTION = "X7 净水器的滤芯多久更换一次？额定功率和滤芯型号分别是什么？"
BOUND = Settings().chat.deep_max_steps


@dataclass
class Kbs:
    admin: httpx.Client
    scoped: httpx.Client  # a key that sees `mine` only
    mine: str
    other: str


def _kb_with(client: httpx.Client, name: str, text: str) -> None:
    assert client.post("/api/v1/knowledge-bases", json={"name": name}).status_code == 201
    files = [("files", (f"{name}.md", text.encode(), "text/markdown"))]
    job = client.post(f"/api/v1/knowledge-bases/{name}/documents", files=files).json()["jobs"][0]
    (done,) = wait_jobs(client, [job["id"]])
    assert done.stage == "done", done


@pytest.fixture(scope="module")
def kbs(keyed_suite: KeyedSuite) -> Kbs:
    admin = keyed_suite.suite.client
    tag = uuid.uuid4().hex[:6]
    mine, other = f"deep-mine-{tag}", f"deep-other-{tag}"
    _kb_with(admin, mine, MANUAL)
    _kb_with(admin, other, OTHER)
    made = admin.post("/api/v1/keys", json={"knowledge_bases": [mine], "name": "deep reader"})
    assert made.status_code == 201, made.text
    scoped = httpx.Client(
        base_url=keyed_suite.suite.gateway_url,
        headers={"Authorization": f"Bearer {made.json()['token']}"},
        timeout=300,
    )
    return Kbs(admin, scoped, mine, other)


def _stream(client: httpx.Client, body: dict[str, object]) -> list[tuple[str, str]]:
    with client.stream("POST", "/api/v1/chat", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        return [(e.event, e.data) for e in parse_sse(response.iter_lines())]


def _body(kb: str, mode: str | None) -> dict[str, object]:
    body: dict[str, object] = {
        "knowledge_base": kb,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    return body | ({"answer_mode": mode} if mode else {})


def test_deep_chat_streams_its_bounded_steps_before_the_answer(kbs: Kbs) -> None:
    events = _stream(kbs.scoped, _body(kbs.mine, "deep"))
    names = [name for name, _ in events]
    steps = [StepEvent.model_validate_json(data) for name, data in events if name == "step"]
    assert names[0] == "step" and names[-1] == "end", names
    assert 1 <= len(steps) <= BOUND
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    # Every step comes before the sources, which come before the first token.
    assert names.index("sources") == len(steps) and names.index("token") > len(steps)
    assert steps[0].query == QUESTION and steps[0].hits
    # The key sees one knowledge base: no step searched another.
    assert {s.knowledge_base for s in steps} == {kbs.mine}
    final = ChatResponse.model_validate_json(events[-1][1])
    assert final.steps == steps
    sources = SourcesEvent.model_validate_json(events[names.index("sources")][1]).sources
    assert sources and final.grounded and final.answer.strip()
    assert {c.chunk_id for c in final.citations} <= {s.chunk_id for s in sources}


def test_a_whole_deep_answer_lists_its_steps(kbs: Kbs) -> None:
    response = kbs.admin.post("/api/v1/chat", json=_body(kbs.mine, "deep"))
    assert response.status_code == 200, response.text
    chat = ChatResponse.model_validate(response.json())
    assert 1 <= len(chat.steps) <= BOUND
    assert {s.knowledge_base for s in chat.steps} <= {kbs.mine, kbs.other}
    assert chat.timings["deep_steps_ms"] > 0 and chat.answer.strip()


def test_a_deep_answer_in_a_conversation_is_saved_with_its_steps(kbs: Kbs) -> None:
    made = kbs.scoped.post("/api/v1/conversations", json={"knowledge_base": kbs.mine})
    assert made.status_code == 201, made.text
    conv_id = made.json()["id"]
    body = _body(kbs.mine, "deep") | {"conversation_id": conv_id}
    reply = ChatResponse.model_validate(kbs.scoped.post("/api/v1/chat", json=body).json())
    stored = kbs.scoped.get(f"/api/v1/conversations/{conv_id}").json()["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert reply.steps and [StepEvent.model_validate(s) for s in stored[1]["steps"]] == reply.steps
    assert stored[0]["steps"] == []


@pytest.mark.parametrize("mode", [None, "fast"])
def test_fast_chat_has_no_steps(kbs: Kbs, mode: str | None) -> None:
    events = _stream(kbs.scoped, _body(kbs.mine, mode))
    names = [name for name, _ in events]
    assert "step" not in names and names[0] == "sources" and names[-1] == "end"
    assert ChatResponse.model_validate_json(events[-1][1]).steps == []


def test_an_unknown_answer_mode_is_a_validation_error(kbs: Kbs) -> None:
    response = kbs.scoped.post("/api/v1/chat", json=_body(kbs.mine, "deeper"))
    assert response.status_code == 422, response.text
    assert ErrorPublic.model_validate(response.json()).error_type == "validation_error"
