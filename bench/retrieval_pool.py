"""Pooled retrieval benchmark: every dataset in one knowledge base, each search mode against it.

    python -m bench.retrieval_pool [--questions-per-set 500] [--data-dir data/bench-pool]

Starts the suite itself (embedded SQLite and queue, free ports), fills the knowledge base once
through the upload API (kept in --data-dir, so a second run reuses it), then searches every
sampled question in each configuration and writes bench/results/retrieval.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from bench.report import RESULTS, machine_line
from bench.suite import REPO, running_suite
from services.client import GatewayClient
from services.evaluation import (
    EvalSet,
    RetrievalConfig,
    default_datasets_dir,
    fill_kb,
    load_squad,
    prepare_kb,
    retrieval_markdown,
    sample_set,
    score_results,
    search_all,
    simplified_variant,
)

logger = logging.getLogger("bench.retrieval_pool")

FILES = ("cmrc2018_dev.json", "xquad.zh.json", "xquad.en.json", "DRCD_dev.json")
KB = "bench-pool"
FIRST_STAGE = (RetrievalConfig("dense"), RetrievalConfig("keyword"), RetrievalConfig("hybrid"))


def _load(args: argparse.Namespace) -> tuple[list[EvalSet], list[EvalSet]]:
    """Full sets (for the corpus) and the sampled question sets, with Simplified DRCD."""
    full = [load_squad(args.datasets / name) for name in FILES]
    sampled = [sample_set(s, None, args.questions_per_set, args.seed) for s in full]
    variants = [v for v in (simplified_variant(s) for s in sampled) if v is not None]
    return full, sampled + variants


def _evaluate(
    client: GatewayClient, sets: list[EvalSet], config: RetrievalConfig, reranker: str
) -> dict[str, Any]:
    questions = [q for s in sets for q in s.questions]
    started = time.monotonic()
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if done % 200 == 0:
            logger.info("%s: %d/%d questions", config.label, done, len(questions))

    results = search_all(client, KB, questions, config, progress=tick)
    scored = score_results(results, sets, config)
    if config.rerank:
        scored["label"] = f"{config.label} ({reranker})"
        scored["config"]["reranker"] = reranker
    scored["seconds"] = round(time.monotonic() - started, 1)
    logger.info("%s: %s", scored["label"], json.dumps(scored["overall"]))
    return scored


def _phase(
    args: argparse.Namespace,
    full: list[EvalSet],
    sets: list[EvalSet],
    reranker: str,
    configs: tuple[RetrievalConfig, ...],
    report: dict[str, Any],
) -> None:
    env = {"ZHIKU_RETRIEVAL__RERANKER": reranker}
    with (
        running_suite(args.data_dir, env) as gateway,
        GatewayClient(gateway, timeout=600) as client,
    ):
        prepare_kb(client, KB, reuse=True)
        paragraphs = [p for s in full for p in s.paragraphs]
        summary = fill_kb(client, KB, paragraphs, progress=_ingest_progress())
        report["ingestion"].append(
            {
                "uploaded": summary.uploaded,
                "reused": summary.reused,
                "failed": summary.failed[:20],
                "seconds": round(summary.seconds, 1),
            }
        )
        for config in configs:
            report["runs"].append(_evaluate(client, sets, config, reranker))
            _write(report)


def _ingest_progress() -> Any:
    last = [0.0]

    def show(done: int, total: int) -> None:
        if time.monotonic() - last[0] > 60 or done == total:
            last[0] = time.monotonic()
            logger.info("ingestion: %d/%d jobs finished", done, total)

    return show


def _write(report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "retrieval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "retrieval.md").write_text(retrieval_markdown(report) + _options_markdown())


def _options_markdown() -> str:
    """The in-process reranker comparison of bench.rerank_options, when it has run."""
    path = RESULTS / "rerank_options.json"
    if not path.exists():
        return ""
    options = json.loads(path.read_text())
    lines = [
        "",
        "## Rerankers compared (bench.rerank_options, in-process, questions kept apart)",
        "",
        f"{options['questions']} questions ({options['per_set']} per set, none of them in the "
        f"sample above), the pooled index read directly; rerankers rescore RRF's top "
        f"{options['depth']}. ms: ranking time per question in this process, embedding excluded.",
        "",
        "| ranking | recall@1 | recall@5 | MRR@10 | ms |",
        "|---|---|---|---|---|",
    ]
    for label, row in options["results"].items():
        cells = [f"{row[k]:.3f}" for k in ("recall@1", "recall@5", "mrr@10")]
        lines.append(f"| {label} | {' | '.join(cells)} | {row['ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-pool")
    parser.add_argument("--questions-per-set", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rerankers", default="fusion,lexical,e5", help="Comma-separated, in order."
    )
    parser.add_argument("--skip-first-stage", action="store_true")
    parser.add_argument(
        "--keep-runs", action="store_true", help="Start from the runs in retrieval.json."
    )
    parser.add_argument(
        "--markdown-only", action="store_true", help="Rewrite retrieval.md from retrieval.json."
    )
    args = parser.parse_args()
    if args.markdown_only:
        _write(json.loads((RESULTS / "retrieval.json").read_text()))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault(
        "ZHIKU_LLM__MODEL_PATH", str(REPO / "data/models/qwen2.5-0.5b-q4_k_m.gguf")
    )
    full, sets = _load(args)
    report: dict[str, Any] = {
        "machine": machine_line(),
        "knowledge_base": KB,
        "corpus": {s.name: len(s.paragraphs) for s in full},
        "questions": {s.name: len(s.questions) for s in sets},
        "questions_per_set": args.questions_per_set,
        "seed": args.seed,
        "ingestion": [],
        "runs": [],
    }
    if args.keep_runs:
        kept = json.loads((RESULTS / "retrieval.json").read_text())
        report["runs"], report["ingestion"] = kept["runs"], kept["ingestion"]
    rerankers = [r for r in args.rerankers.split(",") if r]
    for i, reranker in enumerate(rerankers or ["lexical"]):
        first = FIRST_STAGE if i == 0 and not args.skip_first_stage else ()
        rerank = (RetrievalConfig("hybrid", rerank=True),) if rerankers else ()
        _phase(args, full, sets, reranker, first + rerank, report)
    _write(report)


if __name__ == "__main__":
    main()
