"""Resident memory of every zhiku process, idle and under load, with the default models.

    python -m bench.footprint [--out DIR]

The suite as ``make run`` starts it (embedded SQLite and queue, the 1.5B model, the web app):
RSS and PSS of each process (with its children) at idle, then the peak while three chats and
an upload run at once. PSS splits shared pages between the processes that map them, so the
sum of PSS is what the suite costs. Probes in fresh processes then show where the llm
worker's memory goes: the model mmapped against read into memory (ZHIKU_LLM__USE_MMAP).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import RESULTS, machine, machine_line, markdown_with_total, write_results
from bench.suite import REPO, SuiteProcesses, ingest_test_files, suite_processes
from llm_worker.model_files import ensure_bundled
from services.common.settings import LLMSettings
from services.launcher import wait_ready

KB = "bench-footprint"
GOAL_MB = 2.5 * 1024
FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File")
# The KV cache and compute buffers are sized by n_ctx and n_batch at load, not by the prompt:
# two passages keep the 1.5B model's chats short without changing the peak.
TOP_K = 2
NAMES = ("retriever", "gateway", "ingestion", "llm_worker", "frontend")
QUESTIONS = [
    "天工X7 的 PP 棉滤芯多久更换一次？",
    "天工X7 的售后服务热线是多少？",
    "天工X7 的额定功率是多少？",
]


def smaps_rollup(pid: int) -> dict[str, float]:
    """MB of the FIELDS from /proc/<pid>/smaps_rollup (Linux; PSS needs no psutil)."""
    values = dict.fromkeys(FIELDS, 0.0)
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        match = re.match(r"(\w+):\s+(\d+) kB", line)
        if match and match[1] in values:
            values[match[1]] = int(match[2]) / 1024
    return values


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a PDF parser the ingestion worker started, say)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _model_pages(pid: int) -> dict[str, float]:
    """MB of the GGUF mappings: resident, and this process's share of them."""
    rss = pss = 0
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        lines = []
    in_model = False
    for line in lines:
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            in_model = line.rstrip().endswith(".gguf")
        elif in_model and line.startswith(("Rss:", "Pss:")):
            kb = int(line.split()[1])
            rss, pss = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
    return {"Model_Rss": rss / 1024, "Model_Pss": pss / 1024}


def measure(suite: SuiteProcesses) -> dict[str, dict[str, float]]:
    """Each suite process with its children, in MB; Own: PSS with the model file counted whole.

    Another process on the machine mapping the same GGUF would halve the model's PSS here;
    counting its resident pages whole gives what the suite costs on a machine of its own.
    """
    usage = {}
    for name, proc in suite.procs.items():
        pids = _tree(proc.pid)
        values = [{**smaps_rollup(pid), **_model_pages(pid)} for pid in pids]
        summed = {f: sum(v[f] for v in values) for f in (*FIELDS, "Model_Rss", "Model_Pss")}
        summed["Own"] = summed["Pss"] - summed["Model_Pss"] + summed["Model_Rss"]
        usage[name] = {f: round(v, 1) for f, v in summed.items()}
    return usage


def _peak(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {name: {f: max(a[name][f], b[name][f]) for f in a[name]} for name in a}


def _total(usage: dict[str, dict[str, float]]) -> dict[str, float]:
    fields = next(iter(usage.values()))
    return {f: round(sum(u[f] for u in usage.values()), 1) for f in fields}


def _under_load(suite: SuiteProcesses, gateway: str) -> dict[str, Any]:
    """Peak usage while three chats and one upload run at once."""
    peak, done = measure(suite), threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.5):
            peak = _peak(peak, measure(suite))

    def chat(question: str) -> None:
        messages = [{"role": "user", "content": question}]
        body = {"knowledge_base": KB, "messages": messages, "top_k": TOP_K}
        httpx.post(f"{gateway}/api/v1/chat", json=body, timeout=600).raise_for_status()

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=chat, args=(q,)) for q in QUESTIONS]
    for worker in workers:
        worker.start()
    ingest_test_files(gateway, KB, ("en_report.txt",))
    for worker in workers:
        worker.join()
    done.set()
    sampler.join()
    return _peak(peak, measure(suite))


def _suite_run(model: Path, max_tokens: int) -> dict[str, Any]:
    env = {"ZHIKU_LLM__MODEL_PATH": str(model), "ZHIKU_LLM__MAX_TOKENS": str(max_tokens)}
    with (
        tempfile.TemporaryDirectory() as tmp,
        suite_processes(Path(tmp), env, NAMES) as (suite, gateway),
    ):
        wait_ready(f"{gateway}/readyz", suite.procs, timeout_s=300)
        wait_ready(f"http://127.0.0.1:{suite.frontend_port}", suite.procs, timeout_s=120)
        ingest_test_files(gateway, KB, ("zh_manual.md",), create=True)
        with httpx.Client(base_url=gateway, timeout=600) as client:
            # One chat first: the model's pages are read in on the first prompt, not at load.
            message = {"role": "user", "content": QUESTIONS[0]}
            body = {"knowledge_base": KB, "messages": [message], "top_k": TOP_K}
            client.post("/api/v1/chat", json=body).raise_for_status()
        time.sleep(2)
        idle = measure(suite)
        load = _under_load(suite, gateway)
    return {"idle": idle, "load": load, "idle_total": _total(idle), "load_total": _total(load)}


def _probe(model: Path, use_mmap: bool) -> dict[str, float]:
    """The llm engine alone in a fresh process, after loading and one short prompt."""
    code = (
        "import json, sys, llama_cpp; from bench.footprint import smaps_rollup; import os\n"
        "llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), "
        "n_batch=int(sys.argv[3]), n_threads=int(sys.argv[4]), use_mmap=sys.argv[5] == '1', "
        "verbose=False)\n"
        "hello = [{'role': 'user', 'content': 'Hello'}]\n"
        "llm.create_chat_completion(messages=hello, max_tokens=4)\n"
        "print(json.dumps(smaps_rollup(os.getpid())))\n"
    )
    llm = LLMSettings()
    args = [str(model), str(llm.n_ctx), str(llm.n_batch), str(llm.n_threads), str(int(use_mmap))]
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    probe: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: round(v, 1) for k, v in probe.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the suite on the way out
    model = ensure_bundled("qwen2.5-1.5b", REPO / "data" / "models")
    started = time.perf_counter()
    result: dict[str, Any] = {"model": model.name, "goal_mb": GOAL_MB}
    result["suite"] = _suite_run(model, args.max_tokens)
    result["llm_engine"] = {"mmap": _probe(model, True), "read": _probe(model, False)}
    result["total_s"] = round(time.perf_counter() - started, 1)
    markdown = _markdown(result)
    write_results("footprint", result, markdown, args.out)
    print(markdown)


def _markdown(result: dict[str, Any]) -> str:
    suite, engine = result["suite"], result["llm_engine"]
    idle, load = suite["idle"], suite["load"]
    rows = [
        f"| {name} | {idle[name]['Rss']:.0f} | {idle[name]['Own']:.0f} | "
        f"{load[name]['Rss']:.0f} | {load[name]['Own']:.0f} | "
        f"{load[name]['Pss_Anon']:.0f} / {load[name]['Own'] - load[name]['Pss_Anon']:.0f} |"
        for name in idle
    ]
    it, lt = suite["idle_total"], suite["load_total"]
    saved = engine["mmap"]["Rss"] - engine["read"]["Rss"]
    met = "met" if lt["Own"] <= GOAL_MB else "not met"
    mapped = LLMSettings().use_mmap
    way = "mmapped" if mapped else "read into memory"
    lines = [
        "# Footprint: memory of the whole suite",
        "",
        f"Machine: {machine_line(machine())}. Model {result['model']} (the default), embedded "
        "SQLite and queue, the web app included; MB. Load: three chats and an upload at once, "
        "the peak of samples every 0.5 s. PSS splits shared pages between the processes that map "
        "them; here the model file is counted whole (another process on the machine may map the "
        "same GGUF and would otherwise take a share of it).",
        "",
        "| process | RSS idle | PSS idle | RSS load | PSS load | PSS load anon / file |",
        "|---|---|---|---|---|---|",
        *rows,
        f"| **total** | {it['Rss']:.0f} | {it['Own']:.0f} | {lt['Rss']:.0f} | {lt['Own']:.0f} | "
        f"{lt['Pss_Anon']:.0f} / {lt['Own'] - lt['Pss_Anon']:.0f} |",
        "",
        f"Goal ≤ {GOAL_MB:.0f} MB for the suite: {met} as it stands (PSS under load "
        f"{lt['Own']:.0f} MB; the RSS sum, {lt['Rss']:.0f} MB, counts shared libraries once per "
        f"process). The llm worker has the model {way} "
        f"(ZHIKU_LLM__USE_MMAP={str(mapped).lower()}).",
        "",
        "The llm engine alone (llama-cpp-python, same n_ctx, n_batch, threads; after one prompt):",
        "",
        "| model file | RSS | anonymous (PSS) |",
        "|---|---|---|",
        f"| mmapped (use_mmap=True) | {engine['mmap']['Rss']:.0f} | "
        f"{engine['mmap']['Pss_Anon']:.0f} |",
        f"| read into memory (use_mmap=False) | {engine['read']['Rss']:.0f} | "
        f"{engine['read']['Pss_Anon']:.0f} |",
        "",
        "llama.cpp repacks the Q4_K weights for its CPU kernels into memory of its own; with the "
        "file mmapped the original pages stay resident beside the repacked copy, so the weights "
        f"are held twice. Reading the file instead (use_mmap=False, the default) saves "
        f"{saved:.0f} MB per llm worker, and the kernels run on the same repacked weights.",
    ]
    return markdown_with_total(lines, result["total_s"])


if __name__ == "__main__":
    main()
