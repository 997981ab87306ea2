"""Concurrent chat users against the suite on Redis: throughput, latency, 429s beyond the depth.

    python -m bench.load [--out DIR]

One suite (Redis, SQLite, the 0.5B model, short answers) serves every phase in turn:
1, 4 and 16 users on one llm worker; a burst beyond the queue depth through a second gateway
with a depth of 2; then 4 users on two llm workers consuming the one queue. Each user
asks its questions in sequence through POST /api/v1/chat with stream=true.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report import (
    RESULTS,
    machine,
    machine_line,
    markdown_with_total,
    percentiles,
    write_results,
)
from bench.suite import REPO, SuiteProcesses, ingest_test_files, suite_processes
from llm_worker.model_files import ensure_bundled
from services.common.backend import create_backend
from services.common.schemas import ChatResponse, ErrorPublic
from services.launcher import free_port, wait_ready

KB = "bench-load"
MAX_TOKENS = 48
# Two passages keep a prompt near 900 tokens (five make it 2,000), so the run fits in minutes.
TOP_K = 2
ONE_WORKER = ((1, 2), (4, 2), (16, 1))  # (users, questions each)
TWO_WORKERS = ((4, 2),)
QUESTIONS = [
    "天工X7 的 PP 棉滤芯多久更换一次？",
    "How large is the primary mirror of the Borealis Telescope?",
    "天工X7 的额定功率是多少？",
    "When was Aurora Ridge Observatory founded?",
    "天工X7 的售后服务热线是多少？",
    "How many clear nights did the observatory record in 2024?",
]
OVERLOAD_DEPTH = 2
OVERLOAD_USERS = 16


@dataclass
class Chat:
    """One chat as a simulated user saw it: status, whole time, first token, refusal."""

    status: int
    total_s: float
    ttft_s: float | None = None
    error_type: str | None = None
    retry_after: str | None = None


def _env(model: Path, redis_url: str) -> dict[str, str]:
    return {
        "ZHIKU_REDIS_URL": redis_url,
        "ZHIKU_LLM_QUEUE_DEPTH": "32",  # 16 users on one worker are let in; see the overload run
        "ZHIKU_LLM__MODEL_PATH": str(model),
        "ZHIKU_LLM__MAX_TOKENS": str(MAX_TOKENS),
    }


def _wait_llm_workers(gateway: str, suite: SuiteProcesses, names: list[str]) -> None:
    """Until the gateway is ready and each named llm worker process beats."""
    wait_ready(f"{gateway}/readyz", suite.procs, timeout_s=300)
    wanted = {f"{socket.gethostname()}:{suite.procs[name].pid}" for name in names}
    heartbeats = create_backend(suite.settings).heartbeats
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if wanted <= {str(b.get("worker")) for b in heartbeats.alive("llm")}:
            return
        time.sleep(0.5)
    raise TimeoutError(f"llm workers {', '.join(names)} not beating")


def _chat(client: httpx.Client, question: str) -> Chat:
    message = {"role": "user", "content": question}
    body = {"knowledge_base": KB, "stream": True, "messages": [message], "top_k": TOP_K}
    started, first, event, final = time.perf_counter(), None, "", None
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        if response.status_code != 200:
            error = ErrorPublic.model_validate_json(response.read())
            return Chat(response.status_code, time.perf_counter() - started, None,
                        error.error_type, response.headers.get("retry-after"))  # fmt: skip
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "token" and first is None:
                first = time.perf_counter() - started
            elif line.startswith("data:") and event == "error":
                return Chat(200, time.perf_counter() - started, first, "stream_error")
            elif line.startswith("data:") and event == "end":
                final = ChatResponse.model_validate_json(line.split(":", 1)[1])
    if final is None:
        return Chat(200, time.perf_counter() - started, first, "no_end_event")
    return Chat(200, time.perf_counter() - started, first)


def _users(gateway: str, users: int, questions: int) -> dict[str, Any]:
    """``users`` threads, each asking ``questions`` questions one after the other."""
    chats: list[Chat] = []
    lock, barrier = threading.Lock(), threading.Barrier(users)

    def user(n: int) -> None:
        with httpx.Client(base_url=gateway, timeout=600) as client:
            barrier.wait()
            for k in range(questions):
                chat = _chat(client, QUESTIONS[(n + k) % len(QUESTIONS)])
                with lock:
                    chats.append(chat)

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(users, questions, chats, time.perf_counter() - started)


def _summary(users: int, questions: int, chats: list[Chat], wall_s: float) -> dict[str, Any]:
    ok = [c for c in chats if c.status == 200 and c.error_type is None]
    refused = [c for c in chats if c.status == 429]
    errors = [c for c in chats if c not in ok and c not in refused]
    return {
        "users": users,
        "questions_per_user": questions,
        "wall_s": round(wall_s, 2),
        "answers": len(ok),
        "answers_per_min": round(len(ok) / wall_s * 60, 2),
        "latency_s": {k: round(v, 2) for k, v in percentiles([c.total_s for c in ok]).items()},
        "ttft_s": {
            k: round(v, 2)
            for k, v in percentiles([c.ttft_s for c in ok if c.ttft_s is not None]).items()
        },
        "refused_429": len(refused),
        "refused_latency_s": {
            k: round(v, 3) for k, v in percentiles([c.total_s for c in refused]).items()
        },
        "refused_envelopes_ok": all(
            c.error_type == "overloaded" and c.retry_after for c in refused
        ),
        "errors": len(errors),
        "error_types": sorted({str(c.error_type or c.status) for c in errors}),
    }


def _phases(suite: SuiteProcesses, gateway: str) -> dict[str, Any]:
    commands = suite.commands(llm_workers=2)
    suite.add("llm_worker", commands["llm_worker"])
    _wait_llm_workers(gateway, suite, ["llm_worker"])
    ingest_test_files(gateway, KB, ("zh_manual.md", "en_report.txt"), create=True)
    _users(gateway, 1, 1)  # warm-up: the first prompt pays for loading pages of the model
    one = {f"{u}_users": _users(gateway, u, q) for u, q in ONE_WORKER}

    # A second gateway of the same deployment with a small depth: it shares the slots in Redis.
    port = free_port()
    depth_env = {"ZHIKU_GATEWAY_PORT": str(port), "ZHIKU_LLM_QUEUE_DEPTH": str(OVERLOAD_DEPTH)}
    suite.add("gateway_depth_2", suite.commands(gateway_port=port)["gateway"], depth_env)
    small = f"http://127.0.0.1:{port}"
    wait_ready(f"{small}/readyz", suite.procs, timeout_s=120)
    overload = _users(small, OVERLOAD_USERS, 1)
    suite.remove("gateway_depth_2")

    # Two workers on the one queue, one thread each (two cores in all, as the one worker had).
    suite.remove("llm_worker")
    workers = [name for name in commands if name.startswith("llm_worker")]
    for name in workers:
        suite.add(name, commands[name], {"ZHIKU_LLM__N_THREADS": "1"})
    _wait_llm_workers(gateway, suite, workers)
    _users(gateway, 2, 1)
    before = _answered(suite, workers)
    two = {f"{u}_users": _users(gateway, u, q) for u, q in TWO_WORKERS}
    served = {name: n - before[name] for name, n in _answered(suite, workers).items()}
    return {"one_worker": one, "overload": overload, "two_workers": two, "served": served}


def _answered(suite: SuiteProcesses, names: list[str]) -> dict[str, int]:
    """Chats each llm worker's log says it answered so far."""
    logs = {name: suite.log_dir / f"{name}.log" for name in names}
    return {
        name: log.read_text(errors="replace").count("completion tokens")
        for name, log in logs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the suite on the way out
    model = ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")
    started = time.perf_counter()
    names = ("retriever", "gateway", "ingestion")
    with (
        tempfile.TemporaryDirectory() as tmp,
        suite_processes(Path(tmp), _env(model, args.redis), names) as (suite, gateway),
    ):
        result = _phases(suite, gateway)
    result.update(model=model.name, max_tokens=MAX_TOKENS, overload_depth=OVERLOAD_DEPTH,
                  total_s=round(time.perf_counter() - started, 1))  # fmt: skip
    write_results("load", result, _markdown(result), args.out)
    print(_markdown(result))


def _row(label: str, r: dict[str, Any]) -> str:
    latency, ttft = r["latency_s"], r["ttft_s"]
    return (
        f"| {label} | {r['users']}×{r['questions_per_user']} | {r['answers']} | "
        f"{r['answers_per_min']:.1f} | {latency['p50']:.1f} / {latency['p95']:.1f} | "
        f"{ttft['p50']:.1f} / {ttft['p95']:.1f} | {r['refused_429']} | {r['errors']} |"
    )


def _markdown(result: dict[str, Any]) -> str:
    one, two, over = result["one_worker"], result["two_workers"], result["overload"]
    users = TWO_WORKERS[-1][0]
    gain = two[f"{users}_users"]["answers_per_min"] / one[f"{users}_users"]["answers_per_min"]
    lines = [
        "# Load: concurrent chat users",
        "",
        f"Machine: {machine_line(machine())}. Model {result['model']}, answers of at most "
        f"{result['max_tokens']} tokens from {TOP_K} passages, Redis queue, SQLite; each user asks "
        "its questions in sequence through `POST /api/v1/chat` (SSE).",
        "",
        "| llm workers | users × questions | answers | answers/min | latency p50 / p95 s "
        "| first token p50 / p95 s | 429 | errors |",
        "|---|---|---|---|---|---|---|---|",
        *(_row("1 (2 threads)", r) for r in one.values()),
        *(_row("2 (1 thread each)", r) for r in two.values()),
        "",
        f"Two workers on one queue against one at {users} users: {gain:.2f}× the answers per "
        "minute. Both share the same two cores (one llama.cpp thread each instead of two), so a "
        "second worker can only overlap one chat's retrieval, prompt and streaming with another's "
        f"generation; chats answered per worker: {result['served']}.",
        "",
        f"Beyond the queue depth: {over['users']} chats at once through a gateway with "
        f"ZHIKU_LLM_QUEUE_DEPTH={result['overload_depth']} (one worker): "
        f"{over['answers']} answered, "
        f"{over['refused_429']} refused with 429 `overloaded` (Retry-After set: "
        f"{over['refused_envelopes_ok']}) in {over['refused_latency_s']['p50'] * 1000:.0f} ms "
        f"p50 / {over['refused_latency_s']['p95'] * 1000:.0f} ms p95, errors {over['errors']}.",
    ]
    return markdown_with_total(lines, result["total_s"])


if __name__ == "__main__":
    main()
