"""zhiku's llm worker against raw llama-cpp-python on one model, one backend (GPU or CPU):
time to first token, prompt and generation speed for a ~2,000-token RAG prompt, and what
publishing each piece to the token stream costs.

    python -m bench.gpu_worker --model M.gguf --label gpu --ngl -1 --threads 16 --out gpu.json

Modes, alternated on one loaded model (LlamaGenerator's llama.cpp context, reset before each run
so every prompt is evaluated in full):
  raw       Llama.create_chat_completion(stream=True) on the messages zhiku builds
  zhiku     LlamaGenerator.stream, consumed without publishing
  sql       run_generation publishing into SqlTokenStream (SQLite, the embedded backend), with a
            gateway-like reader process polling the stream (SqlTokenStream.read)
  sql_fNN   the same with stream_flush_ms=NN (token events coalesced)
Grounding hold is off: with random weights it would replace every answer with "not found".
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import llama_cpp

from llm_worker.generator import LlamaGenerator
from llm_worker.prompts import build_messages
from llm_worker.service import run_generation
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.generation_schemas import ContextPassage, GenerationRequest, StreamEvent
from services.common.settings import LLMSettings
from services.common.streams import SqlTokenStream

TEXT = (
    "the filter cartridge should be replaced every six months or after 2000 liters of water "
    "the warranty covers the pump and the control board for two years from the date of purchase "
    "quarterly revenue grew by twelve percent while operating costs fell and the board approved "
    "the observatory was founded in 1962 and its primary mirror measures 4.2 meters across "
    "滤芯 更换 保修 服务 热线 合同 报告 会议 预算 文档 检索 问答"
)
WORDS = TEXT.split(" ")


class TimedStream:
    """SqlTokenStream that records when each publish returned and how long it took."""

    def __init__(self, inner: SqlTokenStream) -> None:
        self.inner = inner
        self.done: list[float] = []
        self.spent: list[float] = []

    def cancelled(self, stream_id: str) -> bool:
        return self.inner.cancelled(stream_id)

    def cancel(self, stream_id: str) -> None:
        self.inner.cancel(stream_id)

    def publish(self, stream_id: str, event: StreamEvent) -> None:
        t = time.perf_counter()
        self.inner.publish(stream_id, event)
        now = time.perf_counter()
        if event.kind == "token":
            self.done.append(now)
            self.spent.append(now - t)

    def read(self, stream_id: str, timeout_s: float, after: str | None = None) -> Any:
        return self.inner.read(stream_id, timeout_s, after)


def make_request(gen: LlamaGenerator, tokens: int, seed: int, max_tokens: int) -> GenerationRequest:
    """A question and five passages whose chat prompt is about ``tokens`` tokens."""
    rng = random.Random(seed)
    question = f"Request {seed}: how often should the filter be replaced, and who pays?"
    bare = build_messages(GenerationRequest(stream_id="x", question=question))
    fixed = sum(gen.count_tokens(m["content"]) + 5 for m in bare)  # + the template's role tags
    per = max(20, (tokens - fixed) // 5 - 20)  # - the <document ...> tags around each passage
    passages = []
    for i in range(5):
        words = [rng.choice(WORDS) for _ in range(per * 2)]
        text = " ".join(words)
        while gen.count_tokens(text) > per:
            words = words[: int(len(words) * 0.95)]
            text = " ".join(words)
        passages.append(ContextPassage(index=i + 1, document_name=f"doc{seed}-{i}.pdf", text=text))
    return GenerationRequest(
        stream_id=uuid.uuid4().hex, question=question, passages=passages, max_tokens=max_tokens
    )


class Reader:
    """A gateway-like reader in its own process, started once: reads the stream ids it is sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.writer = SqlTokenStream(make_sessionmaker(make_engine(url)))  # one per worker process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gpu_worker", "--read", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def follow(self, stream_id: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(stream_id + "\n")
        self.proc.stdin.flush()

    def seen(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        return dict(json.loads(self.proc.stdout.readline()))


def read_events(url: str) -> None:
    stream = SqlTokenStream(make_sessionmaker(make_engine(url)))
    print("ready", flush=True)
    for line in sys.stdin:
        stamps = [time.time() for e in stream.read(line.strip(), 120) if e.kind == "token"]
        print(
            json.dumps(
                {
                    "n": len(stamps),
                    "first": stamps[0] if stamps else None,
                    "last": stamps[-1] if stamps else None,
                }
            ),
            flush=True,
        )


def one_run(
    mode: str, gen: LlamaGenerator, req: GenerationRequest, reader: Reader
) -> dict[str, Any]:
    llm = gen._llama
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    stamps: list[float] = []
    timed = None
    if mode == "raw":
        t0, w0 = time.perf_counter(), time.time()
        msgs = build_messages(req, system_prompt=req.system_prompt)
        chunks: Any = llm.create_chat_completion(
            messages=msgs,  # type: ignore[arg-type]
            temperature=gen.settings.temperature,
            max_tokens=req.max_tokens,
            seed=gen.settings.seed,
            stream=True,
        )
        for chunk in chunks:
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
    elif mode == "zhiku":
        t0, w0 = time.perf_counter(), time.time()
        msgs = build_messages(req, system_prompt=req.system_prompt)
        for _piece in gen.stream(msgs, None, req.max_tokens):
            stamps.append(time.perf_counter())
    else:
        flush = int(mode[5:]) if mode.startswith("sql_f") else 0
        gen.settings = gen.settings.model_copy(update={"stream_flush_ms": flush})
        timed = TimedStream(reader.writer)
        reader.follow(req.stream_id)
        t0, w0 = time.perf_counter(), time.time()
        run_generation(req, timed, gen)
        stamps = timed.done
    end = time.perf_counter()
    p = llama_cpp.llama_perf_context(llm.ctx)
    prompt = int(p.n_p_eval)
    completion = int(llm.n_tokens) - prompt + 1  # sampled tokens; the last one is not evaluated
    r: dict[str, Any] = {
        "mode": mode,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "events": len(stamps),
        "total_s": round(end - t0, 4),
        "ttft_s": round(stamps[0] - t0, 4) if stamps else None,
        "native_prompt_tok_s": round(prompt / (p.t_p_eval_ms / 1000), 1) if p.t_p_eval_ms else None,
        "native_gen_tok_s": round(p.n_eval / (p.t_eval_ms / 1000), 2) if p.t_eval_ms else None,
    }
    if len(stamps) > 1 and completion > 1:
        r["gen_tok_s"] = round((completion - 1) / (stamps[-1] - stamps[0]), 2)
    if timed is not None and timed.spent:
        r["publish_ms_mean"] = round(1000 * statistics.mean(timed.spent), 3)
        r["publish_share_of_gen"] = round(
            sum(timed.spent[1:]) / max(1e-9, stamps[-1] - stamps[0]), 4
        )
    if timed is not None:
        seen = reader.seen()
        if seen["first"]:
            r["gateway_ttft_s"] = round(seen["first"] - w0, 4)
            r["gateway_events"] = seen["n"]
            if seen["last"] > seen["first"] and completion > 1:
                r["gateway_gen_tok_s"] = round((completion - 1) / (seen["last"] - seen["first"]), 2)
    return r


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    keys = (
        "ttft_s",
        "native_prompt_tok_s",
        "gen_tok_s",
        "native_gen_tok_s",
        "events",
        "publish_ms_mean",
        "publish_share_of_gen",
        "gateway_ttft_s",
        "gateway_gen_tok_s",
    )
    out: dict[str, dict[str, float]] = {}
    for mode in dict.fromkeys(r["mode"] for r in runs):
        mine = [r for r in runs if r["mode"] == mode]
        out[mode] = {
            k: round(statistics.median(r[k] for r in mine), 4)
            for k in keys
            if all(r.get(k) is not None for r in mine)
        }
        out[mode]["runs"] = len(mine)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--read", help=argparse.SUPPRESS)
    ap.add_argument("--model")
    ap.add_argument("--label", default="run")
    ap.add_argument("--ngl", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=2000)
    ap.add_argument("--gen", type=int, default=200)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--modes", default="raw,zhiku,sql,sql_f25,sql_f50")
    ap.add_argument("--deadline", type=float, default=0.0, help="epoch s: no new round after it")
    ap.add_argument("--out", required=False)
    a = ap.parse_args()
    if a.read:
        read_events(a.read)
        return
    settings = LLMSettings(
        model_path=a.model,
        n_gpu_layers=a.ngl,
        n_threads=a.threads,
        grounding_hold=False,
        max_tokens=a.gen,
    )
    url = f"sqlite:///{tempfile.mkdtemp()}/zhiku.db"
    upgrade_database(url)
    reader = Reader(url)
    t = time.perf_counter()
    gen = LlamaGenerator(settings, Path(a.model))
    res: dict[str, Any] = {
        "label": a.label,
        "load_s": round(time.perf_counter() - t, 2),
        "backend": gen.backend_info(),
        "n_threads_batch": int(gen._llama.context_params.n_threads_batch),
        "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
        "runs": [],
    }
    modes = a.modes.split(",")
    warm = make_request(gen, 64, 9999, 8)
    for mode in modes:  # warm-up: first kernels, thread pools, the reader's imports
        one_run(mode, gen, warm.model_copy(update={"stream_id": uuid.uuid4().hex}), reader)
    for rep in range(a.reps):
        if rep and a.deadline and time.time() > a.deadline:
            res["skipped"] = f"rounds after {rep} (deadline)"
            break
        req = make_request(gen, a.prompt_tokens, rep + 1, a.gen)
        order = modes if rep % 2 == 0 else modes[::-1]
        for mode in order:
            r = one_run(mode, gen, req.model_copy(update={"stream_id": uuid.uuid4().hex}), reader)
            r["rep"] = rep
            res["runs"].append(r)
            print(f"[{a.label}] {json.dumps(r)}", file=sys.stderr, flush=True)
        res["summary"] = summarize(res["runs"])
        if a.out:
            Path(a.out).write_text(json.dumps(res, indent=1))
    print(
        "RESULT "
        + json.dumps({"label": a.label, "load_s": res["load_s"], "summary": res.get("summary")}),
        flush=True,
    )


if __name__ == "__main__":
    main()
