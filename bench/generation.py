"""Generation through zhiku (gateway → Celery on Redis → llm worker → SSE) against llama-cpp-python
called directly on the same model, the same messages and the same settings, in one run; then what
llama.cpp's KV cache saves on a shared prompt prefix and on repeated questions.

    python -m bench.generation [--model PATH] [--rounds 2] [--out DIR]

Writes generation.json and generation.md. Ratios, not absolute times, are the point: both sides
run on this machine, one after the other, on the same prompts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import llama_cpp

from bench.report import RESULTS, machine_line, write_results
from bench.suite import REPO, ingest_test_files, running_suite
from llm_worker.model_files import ensure_bundled
from llm_worker.prompts import build_messages
from services.common.generation_schemas import ContextPassage, GenerationRequest
from services.common.schemas import ChatResponse, SearchResponse
from services.common.settings import LLMSettings

KB = "bench-generation"
QUESTIONS = [
    "天工X7 的 PP 棉滤芯多久更换一次？",
    "How large is the primary mirror of the Borealis Telescope?",
    "天工X7 的售后服务热线是多少？",
    "When was Aurora Ridge Observatory founded?",
]
MAX_TOKENS = 64
Row = dict[str, float]


def _through_gateway(client: httpx.Client, question: str) -> Row:
    messages = [{"role": "user", "content": question}]
    body = {"knowledge_base": KB, "stream": True, "messages": messages}
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


def _zhiku(model: Path, redis: str, rounds: int, extra: dict[str, str]) -> tuple[list[Row], Any]:
    """Every question ``rounds`` times through the suite; also the messages its worker built."""
    env = {"ZHIKU_REDIS_URL": redis, "ZHIKU_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
           "ZHIKU_LLM__MODEL_PATH": str(model), "ZHIKU_LLM__MAX_TOKENS": str(MAX_TOKENS),
           **extra}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, running_suite(Path(tmp), env) as gateway:
        ingest_test_files(gateway, KB, ("zh_manual.md", "en_report.txt"), create=True)
        client = httpx.Client(base_url=gateway, timeout=600)
        rows = [_through_gateway(client, q) for _ in range(rounds) for q in QUESTIONS]
        prompts = [
            build_messages(
                GenerationRequest(stream_id="b", question=q, passages=_passages(client, q, 5))
            )
            for q in QUESTIONS
        ]
    return rows, prompts


def _raw(
    llm: llama_cpp.Llama,
    settings: LLMSettings,
    messages: list[dict[str, str]],
    first_only: bool = False,
) -> Row:
    start, first, tokens = time.perf_counter(), 0.0, 0
    stream: Any = llm.create_chat_completion(
        messages=cast(Any, messages), stream=True, temperature=settings.temperature,
        max_tokens=settings.max_tokens, seed=settings.seed,
    )  # fmt: skip
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter()
            if first_only:
                stream.close()
                break
    end = time.perf_counter()
    return {"ttft_s": first - start, "tokens": tokens, "tok_s": tokens / (end - start),
            "total_s": end - start, "context_tokens": llm.n_tokens}  # fmt: skip


def _kv_reuse(llm: llama_cpp.Llama, settings: LLMSettings, prompts: list[Any]) -> dict[str, Any]:
    """Time to first token of one prompt: cold, after another question, repeated, from RAM."""
    ttft: dict[str, list[float]] = {"cold": [], "after_other_question": [], "repeated": []}
    ttft["repeated_after_others_ram_cache"] = []
    by_lang = [(prompts[0], prompts[2]), (prompts[1], prompts[3])]  # one Chinese, one English
    for target, other in by_lang:
        llm.reset()
        ttft["cold"].append(_raw(llm, settings, target, first_only=True)["ttft_s"])
        ttft["repeated"].append(_raw(llm, settings, target, first_only=True)["ttft_s"])
        _raw(llm, settings, other, first_only=True)  # same language: the rules and examples
        ttft["after_other_question"].append(_raw(llm, settings, target, first_only=True)["ttft_s"])
    llm.set_cache(llama_cpp.LlamaRAMCache(256 * 2**20))
    for prompt in prompts[:2]:
        llm.reset()
        _raw(llm, settings, prompt)  # saved to the RAM cache when it ends
    for prompt in prompts[:2]:  # each one now follows a question in the other language
        row = _raw(llm, settings, prompt, first_only=True)
        ttft["repeated_after_others_ram_cache"].append(row["ttft_s"])
    llm.set_cache(None)
    return {name: statistics.median(values) for name, values in ttft.items()}


def _median(rows: list[Row], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF; default: bundled 0.5B")
    parser.add_argument("--rounds", type=int, default=1, help="times each question is asked")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    model = args.model or ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")
    settings = LLMSettings(model_path=str(model), max_tokens=MAX_TOKENS)
    zhiku, prompts = _zhiku(model, args.redis, args.rounds, {})
    streamed, _ = _zhiku(model, args.redis, args.rounds, {"ZHIKU_LLM__GROUNDING_HOLD": "false"})
    llm = llama_cpp.Llama(model_path=str(model), n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                          n_batch=settings.n_batch, seed=settings.seed, verbose=False)  # fmt: skip
    raw = [_raw(llm, settings, m) for _ in range(args.rounds) for m in prompts]
    kv = _kv_reuse(llm, settings, prompts)
    runs = {"zhiku": zhiku, "zhiku_no_hold": streamed, "raw": raw}
    _write(args.out, model, args.rounds, runs, kv)


def _write(
    out: Path, model: Path, rounds: int, runs: dict[str, list[Row]], kv: dict[str, float]
) -> None:
    keys = ("ttft_s", "tok_s", "total_s", "tokens")
    median = {key: {name: _median(rows, key) for name, rows in runs.items()} for key in keys}
    raw_tok_s, raw_ttft = median["tok_s"]["raw"], median["ttft_s"]["raw"]
    result: dict[str, Any] = {
        "model": model.name, "questions": QUESTIONS, "rounds": rounds, "max_tokens": MAX_TOKENS,
        "median": median,
        "tok_s_ratio": {n: median["tok_s"][n] / raw_tok_s for n in ("zhiku", "zhiku_no_hold")},
        "ttft_overhead_s": {n: median["ttft_s"][n] - raw_ttft for n in ("zhiku", "zhiku_no_hold")},
        "kv_reuse_ttft_s": kv, "runs": runs,
    }  # fmt: skip
    cold = kv["cold"]
    md = [
        "# Generation: zhiku vs llama-cpp-python directly", "",
        f"Machine: {machine_line()}. Model: {model.name}, max_tokens {MAX_TOKENS}. "
        f"{len(QUESTIONS)} questions (Chinese and English alternating) × {rounds} rounds. zhiku "
        "streams through gateway → Celery (Redis) → llm worker → SSE, with its default first-"
        "sentence grounding hold and with it off (`ZHIKU_LLM__GROUNDING_HOLD=false`); the raw "
        "side calls `create_chat_completion(stream=True)` in-process on the same messages.", "",
        "| median | zhiku | zhiku, no hold | raw | zhiku / raw | no hold / raw |",
        "|---|---|---|---|---|---|",
        *(f"| {k} | {v['zhiku']:.3f} | {v['zhiku_no_hold']:.3f} | {v['raw']:.3f} | "
          f"{v['zhiku'] / v['raw']:.2f} | {v['zhiku_no_hold'] / v['raw']:.2f} |"
          for k, v in median.items()),
        "", "tok_s is whole-request throughput: completion tokens / (prompt evaluation + "
        "generation), the same measure on all sides.", "",
        f"Time to first token beyond raw: {result['ttft_overhead_s']['zhiku'] * 1000:.0f} ms with "
        f"the grounding hold (the first sentence is generated before anything is sent), "
        f"{result['ttft_overhead_s']['zhiku_no_hold'] * 1000:.0f} ms without it.", "",
        "## KV cache reuse (llama-cpp-python, same prompts)", "",
        "| prompt evaluated | time to first token, s | vs cold |", "|---|---|---|",
        *(f"| {name.replace('_', ' ')} | {v:.3f} | {v / cold:.2f} |" for name, v in kv.items()),
        "", "'after other question': the previous request was another question of the same "
        "language, so the rules and examples (the shared prefix) are still in the context. "
        "'repeated after others, RAM cache': every prompt was answered once, then each is asked "
        "again after the others, with `ZHIKU_LLM__PROMPT_CACHE_MB` set (llama.cpp's "
        "LlamaRAMCache restores the saved state of the longest matching prefix).",
    ]  # fmt: skip
    write_results("generation", result, "\n".join(md), out)
    print("\n".join(md))


if __name__ == "__main__":
    main()
