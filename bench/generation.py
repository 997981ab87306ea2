"""Generation through zhiku (gateway → Celery on Redis → llm worker → SSE) against llama-cpp-python
called directly on the same model, the same messages and the same settings, in one run.

    python -m bench.generation [--model PATH] [--rounds 2]

Writes bench/results/generation.json and generation.md. Ratios, not absolute times, are the
point: both sides run on this machine, one after the other, on the same prompt.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import llama_cpp

from bench.suite import REPO, running_suite
from llm_worker.model_files import ensure_bundled
from llm_worker.prompts import build_messages
from services.common.schemas import ChatResponse, ContextPassage, GenerationRequest, SearchResponse
from services.common.settings import LLMSettings

RESULTS = REPO / "bench" / "results"
DATA = REPO / "tests" / "data"
KB = "bench-generation"
QUESTIONS = [
    "天工X7 的 PP 棉滤芯多久更换一次？",
    "How large is the primary mirror of the Borealis Telescope?",
    "天工X7 的售后服务热线是多少？",
    "When was Aurora Ridge Observatory founded?",
]


def _fill(client: httpx.Client) -> None:
    client.post("/api/v1/knowledge-bases", json={"name": KB}).raise_for_status()
    files = [
        ("files", (n, (DATA / n).read_bytes(), "text/plain"))
        for n in ("zh_manual.md", "en_report.txt")
    ]
    jobs = client.post(f"/api/v1/knowledge-bases/{KB}/documents", files=files).json()["jobs"]
    for job in jobs:
        while client.get(f"/api/v1/jobs/{job['id']}").json()["stage"] not in ("done", "failed"):
            time.sleep(0.3)


def _through_gateway(client: httpx.Client, question: str) -> dict[str, float]:
    body = {
        "knowledge_base": KB,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
    }
    start, first, final = time.perf_counter(), 0.0, None
    with client.stream("POST", "/api/v1/chat", json=body) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "token" and not first:
                first = time.perf_counter()
            elif line.startswith("data:") and event == "end":
                final = ChatResponse.model_validate_json(line.split(":", 1)[1])
    end = time.perf_counter()
    tokens = (final.usage.get("completion_tokens", 0) if final else 0) or 1
    return {"ttft_s": first - start, "tokens": tokens, "tok_s": tokens / (end - start),
            "total_s": end - start}  # fmt: skip


def _passages(client: httpx.Client, question: str, top_k: int) -> list[ContextPassage]:
    body = {"knowledge_base": KB, "query": question, "top_k": top_k}
    hits = SearchResponse.model_validate(client.post("/api/v1/search", json=body).json()).hits
    return [
        ContextPassage(index=i, document_name=h.document_name, text=h.text)
        for i, h in enumerate(hits, 1)
    ]


def _raw(
    llm: llama_cpp.Llama, settings: LLMSettings, messages: list[dict[str, str]]
) -> dict[str, float]:
    start, first, tokens = time.perf_counter(), 0.0, 0
    stream: Any = llm.create_chat_completion(
        messages=cast(Any, messages), stream=True, temperature=settings.temperature,
        max_tokens=settings.max_tokens, seed=settings.seed,
    )  # fmt: skip
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    prompt_tokens = len(llm.tokenize(json.dumps(messages, ensure_ascii=False).encode()))
    return {"ttft_s": first - start, "tokens": tokens, "tok_s": tokens / (end - start),
            "total_s": end - start, "prompt_tokens_approx": prompt_tokens}  # fmt: skip


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF; default: bundled 0.5B")
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    model = args.model or ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")
    settings = LLMSettings(model_path=str(model), max_tokens=128)
    env = {"ZHIKU_REDIS_URL": args.redis, "ZHIKU_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
           "ZHIKU_LLM__MODEL_PATH": str(model), "ZHIKU_LLM__MAX_TOKENS": "128"}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_suite(Path(tmp), env) as gateway:
        client = httpx.Client(base_url=gateway, timeout=600)
        _fill(client)
        zhiku = [_through_gateway(client, q) for _ in range(args.rounds) for q in QUESTIONS]
        prompts = [
            build_messages(
                GenerationRequest(stream_id="b", question=q, passages=_passages(client, q, 5))
            )
            for q in QUESTIONS
        ]
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                          n_batch=settings.n_batch, seed=settings.seed, verbose=False)  # fmt: skip
    raw = [_raw(llm, settings, m) for _ in range(args.rounds) for m in prompts]
    _write(model, args.rounds, zhiku, raw)


def _row(key: str, values: dict[str, float]) -> str:
    zhiku, raw = values["zhiku"], values["raw"]
    return f"| {key} | {zhiku:.3f} | {raw:.3f} | {zhiku / raw:.2f} |"


def _write(
    model: Path, rounds: int, zhiku: list[dict[str, float]], raw: list[dict[str, float]]
) -> None:
    summary = {
        key: {"zhiku": _median(zhiku, key), "raw": _median(raw, key)}
        for key in ("ttft_s", "tok_s", "total_s", "tokens")
    }
    ratio = summary["tok_s"]["zhiku"] / summary["tok_s"]["raw"]
    ttft_over = summary["ttft_s"]["zhiku"] - summary["ttft_s"]["raw"]
    result: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, 2 cores, no GPU",
        "model": model.name, "questions": QUESTIONS, "rounds": rounds,
        "median": summary, "tok_s_ratio": ratio, "ttft_overhead_s": ttft_over,
        "zhiku": zhiku, "raw": raw,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "generation.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    md = [
        "# Generation: zhiku vs llama-cpp-python directly", "",
        f"Machine: {result['machine']}. Model: {model.name}. {len(QUESTIONS)} questions × {rounds} "
        "rounds; zhiku streams through gateway → Celery (Redis) → llm worker → SSE, the raw side "
        "calls `create_chat_completion(stream=True)` in-process with the same messages.", "",
        "| median | zhiku | raw | zhiku / raw |", "|---|---|---|---|",
        *(_row(k, v) for k, v in summary.items()),
        "", "tok_s is whole-request throughput: completion tokens / (prompt evaluation + "
        "generation), the same measure on both sides.", "",
        f"Time to first token overhead: {ttft_over * 1000:.0f} ms. zhiku holds the first "
        "sentence back until its grounding check passes, so its first token arrives with the "
        "first sentence; the raw side has no such check.",
    ]  # fmt: skip
    (RESULTS / "generation.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
