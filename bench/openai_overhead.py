"""What zhiku adds in front of a model server: the gateway with ``ZHIKU_LLM__BACKEND=openai``
against the same ``python -m llama_cpp.server`` called directly with the ``openai`` client, on the
same messages, alternating request by request.

    python -m bench.openai_overhead [--model PATH] [--rounds 2] [--out DIR]

Writes openai_overhead.json and .md. The suite runs with the grounding hold off and whole passages
(``ZHIKU_LLM__CONTEXT_TOKENS=0``), so both sides send the server the same prompt and the first
token is the server's first token. Each question is sent once unmeasured first, so both sides
find its prompt in the server's cache: what is left is the transport (Celery, token stream, SSE).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import openai

from bench.generation import QUESTIONS, Row, _passages, _through_gateway
from bench.report import RESULTS, machine_line, write_results
from bench.suite import REPO, ingest_test_files, running_suite
from llm_worker.model_files import ensure_bundled
from llm_worker.prompts import build_messages
from services.common.generation_schemas import GenerationRequest
from services.launcher import free_port, start, stop, wait_ready

KB = "bench-generation"  # _through_gateway and _passages ask this knowledge base
ALIAS = "zhiku"
MAX_TOKENS = 64


def _direct(client: openai.OpenAI, messages: list[dict[str, str]]) -> Row:
    start, first, tokens = time.perf_counter(), 0.0, 0
    stream = client.chat.completions.create(
        model=ALIAS, messages=cast(Any, messages), temperature=0.0, max_tokens=MAX_TOKENS,
        seed=42, stream=True,
    )  # fmt: skip
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            tokens += 1
            first = first or time.perf_counter()
    end = time.perf_counter()
    return {"ttft_s": first - start, "tokens": tokens or 1, "tok_s": (tokens or 1) / (end - start),
            "total_s": end - start}  # fmt: skip


def _measure(base_url: str, rounds: int, top_k: int, data_dir: Path,
             shape: dict[str, str]) -> dict[str, list[Row]]:  # fmt: skip
    env = {**shape, "ZHIKU_LLM__BACKEND": "openai", "ZHIKU_LLM__BASE_URL": base_url,
           "ZHIKU_LLM__MODEL": ALIAS, "ZHIKU_LLM__MAX_TOKENS": str(MAX_TOKENS),
           "ZHIKU_LLM__TEMPERATURE": "0", "ZHIKU_LLM__GROUNDING_HOLD": "false",
           "ZHIKU_LLM__CONTEXT_TOKENS": "0", "ZHIKU_RETRIEVAL__TOP_K": str(top_k),
           "ZHIKU_QUEUE_PREFIX": f"bench-{uuid.uuid4().hex[:6]}"}  # fmt: skip
    runs: dict[str, list[Row]] = {"gateway": [], "direct": []}
    direct = openai.OpenAI(base_url=base_url, api_key="none", timeout=600, max_retries=0)
    with running_suite(data_dir, env) as gateway:
        ingest_test_files(gateway, KB, ("zh_manual.md", "en_report.txt"), create=True)
        client = httpx.Client(base_url=gateway, timeout=600)
        requests = [
            GenerationRequest(stream_id="b", question=q, passages=_passages(client, q, top_k))
            for q in QUESTIONS
        ]
        prompts = {r.question: build_messages(r) for r in requests}
        for _ in range(rounds):
            for question, messages in prompts.items():
                # The server keeps the last prompt evaluated: warm it, so that neither side
                # pays the prompt's evaluation and the difference is what zhiku adds.
                _direct(direct, messages)
                runs["gateway"].append(_through_gateway(client, question))
                runs["direct"].append(_direct(direct, messages))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF; default: bundled 0.5B")
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--top-k", type=int, default=5, help="passages per prompt")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="'' : embedded only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    del QUESTIONS[args.questions :]
    model = args.model or ensure_bundled("qwen2.5-0.5b", REPO / "data" / "models")
    port = free_port()
    # Without --interrupt_requests False a readiness probe would cut answers short.
    server = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias",
              ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
              "--n_threads", "2", "--verbose", "False",
              "--interrupt_requests", "False"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        procs: dict[str, subprocess.Popen[bytes]] = start({"server": server}, {}, Path(tmp))
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            wait_ready(f"{base_url}/models", procs, timeout_s=120)
            # Embedded first: running_suite leaves the ZHIKU_ variables of a run in os.environ.
            shapes: dict[str, dict[str, str]] = {"embedded (SQLite token stream)": {}}
            if args.redis:
                shapes["Celery on Redis"] = {"ZHIKU_REDIS_URL": args.redis}
            runs = {
                label: _measure(base_url, args.rounds, args.top_k, Path(tmp) / f"suite{i}", env)
                for i, (label, env) in enumerate(shapes.items())
            }
        finally:
            stop(procs)
    _write(args.out, model, args.rounds, runs)


def _write(out: Path, model: Path, rounds: int, shapes: dict[str, dict[str, list[Row]]]) -> None:
    keys = ("ttft_s", "tok_s", "total_s", "tokens")
    result: dict[str, Any] = {"model": model.name, "questions": QUESTIONS, "rounds": rounds,
                              "max_tokens": MAX_TOKENS, "shapes": {}}  # fmt: skip
    md = [
        "# The openai backend: gateway vs the model server called directly", "",
        f"Machine: {machine_line()}. Model: {model.name} in `python -m llama_cpp.server`, "
        f"max_tokens {MAX_TOKENS}, temperature 0. {len(QUESTIONS)} questions × {rounds} rounds, "
        "alternating: gateway (SSE, llm worker with `ZHIKU_LLM__BACKEND=openai`, grounding hold "
        "off, whole passages; its times include the retrieval) and the `openai` client on the "
        "same messages; each question's prompt is evaluated once before, so both sides find it "
        "in the server's cache and the difference is zhiku's transport.",
    ]  # fmt: skip
    for label, runs in shapes.items():
        median = {
            k: {n: statistics.median(r[k] for r in rows) for n, rows in runs.items()} for k in keys
        }
        ratio = median["tok_s"]["gateway"] / median["tok_s"]["direct"]
        overhead_ms = (median["ttft_s"]["gateway"] - median["ttft_s"]["direct"]) * 1000
        result["shapes"][label] = {"median": median, "tok_s_ratio": ratio,
                                   "ttft_overhead_ms": overhead_ms, "runs": runs}  # fmt: skip
        md += [
            "", f"## {label}", "",
            "| median | gateway | direct | gateway / direct |", "|---|---|---|---|",
            *(f"| {k} | {v['gateway']:.3f} | {v['direct']:.3f} | {v['gateway'] / v['direct']:.2f} |"
              for k, v in median.items()),
            "", f"Whole-request tokens/s ratio: {ratio:.3f} (target ≥ 0.95). Time to first token "
            f"overhead: {overhead_ms:.0f} ms (target ≤ 100 ms).",
        ]  # fmt: skip
    write_results("openai_overhead", result, "\n".join(md), out)
    print("\n".join(md))


if __name__ == "__main__":
    main()
