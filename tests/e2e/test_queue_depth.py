"""Queue depth and several llm workers: two workers on one Redis queue, depth 1 per worker.

Chats beyond the depth get 429 ``overloaded`` at once on every path that would enqueue
generation; the others are answered, both workers answer, and no slot is left held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from services.common.schemas import ChatResponse, ErrorPublic, HealthPublic, UploadAccepted
from services.common.settings import Settings
from services.common.slots import SLOT_TTL_S, RedisSlotBackend, slots_key
from tests.e2e.conftest import RunningSuite, _start_suite, _stop_suite, wait_jobs

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data"
KB = "depth-kb"
WORKERS = 2
DEPTH = 1
QUESTIONS = [
    "天工X7 的 PP 棉滤芯多久更换一次？",
    "天工X7 的售后服务热线是多少？",
    "天工X7 的整机保修期是多久？",
]


@pytest.fixture(scope="module")
def two_worker_suite(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, small_model: Path
) -> Iterator[tuple[RunningSuite, Settings]]:
    """SQLite, Redis, two llm workers (one thread each) and a depth of one chat per worker."""
    env = {
        "ZHIKU_LLM_WORKERS": str(WORKERS),
        "ZHIKU_LLM_QUEUE_DEPTH": str(DEPTH),
        "ZHIKU_LLM__N_THREADS": "1",
        "ZHIKU_LLM__MAX_TOKENS": "24",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)  # the launcher reads ZHIKU_LLM_WORKERS from the environment
        suite, procs = _start_suite(
            tmp_path_factory.mktemp("depth-data"), small_model, None, redis_url, env
        )
    assert {"llm_worker", "llm_worker_2"} <= set(procs)
    settings = Settings(redis_url=redis_url, queue_prefix=suite.queue_prefix)
    try:
        _wait_for_workers(suite.client, WORKERS)
        suite.client.post("/api/v1/knowledge-bases", json={"name": KB}).raise_for_status()
        seed = [("files", ("zh_manual.md", (DATA / "zh_manual.md").read_bytes(), "text/markdown"))]
        accepted = UploadAccepted.model_validate(
            suite.client.post(f"/api/v1/knowledge-bases/{KB}/documents", files=seed).json()
        )
        assert all(job.stage == "done" for job in wait_jobs(suite.client, [accepted.jobs[0].id]))
        yield suite, settings
    finally:
        _stop_suite(suite, procs, "depth")


def _wait_for_workers(client: httpx.Client, count: int, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = HealthPublic.model_validate(client.get("/readyz").json())
        if health.checks.get("llm", "").startswith(f"ok: {count} worker(s)"):
            return
        time.sleep(1)
    raise AssertionError(f"not {count} llm workers beating: {health.checks}")


def _chat(
    base: str, question: str, results: list[tuple[int, object]], start: threading.Barrier
) -> None:
    message = {"role": "user", "content": question}
    body = {"knowledge_base": KB, "stream": True, "messages": [message]}
    with httpx.Client(base_url=base, timeout=300) as client:
        start.wait()
        with client.stream("POST", "/api/v1/chat", json=body) as response:
            if response.status_code != 200:
                response.read()
                results.append((response.status_code, response))
                return
            event, final, errors = "", None, []
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "end":
                    final = ChatResponse.model_validate_json(line.split(":", 1)[1])
                elif line.startswith("data:") and event == "error":
                    errors.append(line)
            results.append((200, errors or final))


def _burst(suite: RunningSuite, count: int) -> list[tuple[int, object]]:
    """``count`` streamed chats sent at the same moment."""
    results: list[tuple[int, object]] = []
    start = threading.Barrier(count)
    threads = [
        threading.Thread(
            target=_chat, args=(suite.gateway_url, QUESTIONS[n % len(QUESTIONS)], results, start)
        )
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _wait_no_slots(backend: RedisSlotBackend) -> int:
    """Slots still held once the gateway had time to run its releases."""
    deadline = time.monotonic() + SLOT_TTL_S
    while backend.count() and time.monotonic() < deadline:
        time.sleep(0.2)
    return backend.count()


def test_chats_beyond_the_depth_get_429_the_others_answers(
    two_worker_suite: tuple[RunningSuite, Settings],
) -> None:
    suite, settings = two_worker_suite
    results = _burst(suite, 3 * WORKERS * DEPTH)
    refused = [r for status, r in results if status == 429]
    answered = [r for status, r in results if status == 200]
    assert len(refused) + len(answered) == len(results), [s for s, _ in results]
    assert refused, "more chats than the depth allows, yet none was refused"
    assert len(answered) >= WORKERS * DEPTH
    for response in refused:
        assert isinstance(response, httpx.Response)
        assert ErrorPublic.model_validate_json(response.content).error_type == "overloaded"
        assert int(response.headers["Retry-After"]) > 0
    assert all(isinstance(reply, ChatResponse) and reply.answer for reply in answered), answered
    backend = RedisSlotBackend(redis.Redis.from_url(str(settings.redis_url)), slots_key(settings))
    assert _wait_no_slots(backend) == 0


def test_both_workers_answer_chats(two_worker_suite: tuple[RunningSuite, Settings]) -> None:
    suite, _ = two_worker_suite
    logs = ("llm_worker", "llm_worker_2")
    for _ in range(4):
        if all("completion tokens in" in suite.log(name) for name in logs):
            break
        # As many at once as the depth allows: one for each worker.
        assert {status for status, _ in _burst(suite, WORKERS * DEPTH)} <= {200, 429}
    answered = {name: "completion tokens in" in suite.log(name) for name in logs}
    assert all(answered.values()), answered


def test_every_generation_path_is_refused_while_other_gateways_hold_the_slots(
    two_worker_suite: tuple[RunningSuite, Settings],
) -> None:
    suite, settings = two_worker_suite
    client = redis.Redis.from_url(str(settings.redis_url))
    backend = RedisSlotBackend(client, slots_key(settings))
    assert _wait_no_slots(backend) == 0
    # What chats through other gateways leave in Redis: one slot per worker, still fresh.
    fresh = int(client.time()[0]) + SLOT_TTL_S
    client.zadd(slots_key(settings), {f"other-gateway-{n}": fresh for n in range(WORKERS)})
    message = {"role": "user", "content": QUESTIONS[0]}
    follow_up = [message, {"role": "assistant", "content": "180 天 [1]。"}, dict(message)]
    requests = [
        ("/api/v1/chat", {"knowledge_base": KB, "messages": [message]}),
        ("/api/v1/chat", {"knowledge_base": KB, "messages": [message], "stream": True}),
        ("/api/v1/chat", {"knowledge_base": KB, "messages": follow_up}),
        ("/v1/chat/completions", {"model": f"zhiku:{KB}", "messages": [message]}),
        ("/v1/chat/completions", {"model": f"zhiku:{KB}", "messages": [message], "stream": True}),
    ]
    try:
        for path, body in requests:
            response = suite.client.post(path, json=body)
            assert (path, response.status_code) == (path, 429), response.text
            assert ErrorPublic.model_validate(response.json()).error_type == "overloaded"
            assert "Retry-After" in response.headers
    finally:
        client.zrem(slots_key(settings), *(f"other-gateway-{n}" for n in range(WORKERS)))
    response = suite.client.post(path, json={**body, "stream": False})
    assert response.status_code == 200, response.text
    assert _wait_no_slots(backend) == 0
