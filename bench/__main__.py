"""``make bench``: every speed benchmark in one run, one after the other, then a summary.

    python -m bench [--only generation,load] [--out bench/results]

Each benchmark runs in its own process (a crash or a leaked thread cannot skew the next one) and
writes ``<name>.json`` and ``<name>.md``; this writes ``summary.md`` (the machine, how long each
took, then every benchmark's own table) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from bench.report import RESULTS, machine, machine_line
from llm_worker.cpu_info import describe

logger = logging.getLogger("bench")

# Cheapest first, so a broken environment fails fast; the answer run (default model, about an
# hour and a half on 2 cores) last.
BENCHMARKS = (
    "ingestion",
    "parsing",
    "retrieval_scale",
    "langchain_baseline",
    "generation",
    "openai_overhead",
    "load",
    "footprint",
    "answers",
)


def _run(name: str, out: Path) -> dict[str, object]:
    started = time.monotonic()
    logger.info("== %s", name)
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--out", str(out)], check=False)
    seconds = round(time.monotonic() - started, 1)
    logger.info("== %s: exit %s after %.0f s", name, proc.returncode, seconds)
    return {"name": name, "exit_code": proc.returncode, "seconds": seconds}


def _summary(runs: list[dict[str, object]], out: Path) -> str:
    lines = [
        "# zhiku benchmarks",
        "",
        f"Machine: {machine_line()}. Produced by `make bench` (`python -m bench`); every pair is "
        "measured in the same run, one after the other, so read the ratios.",
        "",
        f"CPU and llama.cpp: {describe()}.",
        "",
        "| benchmark | seconds | result |",
        "|---|---|---|",
    ]
    for run in runs:
        status = "ok" if run["exit_code"] == 0 else f"failed (exit {run['exit_code']})"
        lines.append(f"| [{run['name']}]({run['name']}.md) | {run['seconds']} | {status} |")
    for run in runs:
        md = out / f"{run['name']}.md"
        if run["exit_code"] == 0 and md.exists():
            body = md.read_text().replace("\n# ", "\n### ").removeprefix("# ")
            lines += ["", "## " + body.strip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="Comma-separated subset of the benchmarks.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    chosen = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    runs = [_run(name, args.out) for name in BENCHMARKS if name in chosen]
    total = round(time.monotonic() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(_summary(runs, args.out))
    payload = {"machine": machine(), "seconds": total, "runs": runs}
    (args.out / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    logger.info("all benchmarks: %.0f s; summary in %s", total, args.out / "summary.md")
    if any(run["exit_code"] != 0 for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    main()
