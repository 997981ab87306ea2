"""What every benchmark writes: the machine it ran on, JSON results and a Markdown summary."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any

from bench.suite import REPO
from llm_worker import cpu_info

RESULTS = REPO / "bench" / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """The machine a result was measured on, as the summaries describe it."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpu": None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_features": cpu_info.cpu_features(),
        "llama_kernels": cpu_info.llama_kernels(),
    }


def machine_line(info: dict[str, Any] | None = None) -> str:
    """One line for a Markdown summary: ``2 cores (CPU model), 23.4 GiB, no GPU``."""
    m = info or machine()
    return f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, no GPU, Python {m['python']}"


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 (inclusive method; one value is its own percentiles)."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan")}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": cuts[94]}


def markdown_with_total(lines: list[str], total_s: float) -> str:
    """The summary's lines joined, closed by how long the whole run took."""
    return "\n".join([*lines, "", f"Whole run {total_s:.0f} s."])


def write_results(name: str, result: dict[str, Any], markdown: str, out: Path = RESULTS) -> None:
    """``out/<name>.json`` (with the machine added) and ``out/<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **result}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    (out / f"{name}.md").write_text(markdown.rstrip() + "\n")
