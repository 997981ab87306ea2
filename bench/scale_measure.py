"""What bench.retrieval_scale measures beside latency: the retriever's memory and its restart.

The retriever runs as a child process of the suite: its resident memory is read from /proc
(the process and any children), and a restart is the process stopped and started again, timed
until its /readyz answers 200 (the embedder loaded and every index checked).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from bench.suite import SuiteProcesses
from retriever.offline import AnnConfig

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MiB (0 for what has exited)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            resident = int(Path(f"/proc/{current}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total_kb += resident * PAGE_KB
        todo.extend(children.get(current, []))
    return total_kb / 1024


def retriever_rss_mb(suite: SuiteProcesses) -> float:
    """The suite's retriever's resident memory, in MiB."""
    return rss_mb(suite.procs["retriever"].pid)


def restart_retriever(suite: SuiteProcesses, timeout_s: float = 900) -> float:
    """Stop the retriever, start it again, and answer the seconds until its /readyz says 200."""
    url = f"{suite.settings.retriever_url}/readyz"
    command = suite.commands()["retriever"]
    suite.remove("retriever")
    started = time.monotonic()
    suite.add("retriever", command)
    with httpx.Client(timeout=5) as http:
        while time.monotonic() - started < timeout_s:
            if suite.procs["retriever"].poll() is not None:
                raise RuntimeError("the retriever exited while restarting; see its log")
            try:
                if http.get(url).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"the retriever was not ready {timeout_s:.0f} s after a restart")


def dense_kind(count: int, ann: AnnConfig) -> str:
    """The dense index kind the retriever picks for ``count`` chunks (retriever.vector_index)."""
    if count < ann.min_vectors:
        return "flat"
    return "ivf-sq8" if count >= ann.sq8_min_vectors else "ivf-flat"


def comparison(runs: dict[str, dict[str, Any]]) -> list[str]:
    """One row per run: the figures issue #16 asks for, side by side."""
    lines = [
        "| run | chunks | dense index | retriever RSS after fill / after restart (MiB) | "
        "hybrid via gateway p50 / p95 (ms) | dense recall@10 vs exact | restart to ready (s) "
        "| adds (chunks/s, no embedding) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, run in runs.items():
        hybrid = run["modes"]["hybrid"]["gateway_ms"]
        lines.append(
            f"| {label} | {run['corpus']['chunks']:,} | {run['dense_index']} "
            f"| {run['rss_mb']['after_fill']:.0f} / {run['rss_mb']['after_restart']:.0f} "
            f"| {hybrid['p50']:.1f} / {hybrid['p95']:.1f} | {run['recall_at_10']['served']:.3f} "
            f"| {run['restart_to_ready_s']:.1f} | {run['adds_per_s']:,.0f} |"
        )
    return lines
