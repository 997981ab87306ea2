"""Answer quality on a fixed sample: chat answers scored against the sets' gold answers.

    ZHIKU_LLM__MODEL_PATH=data/models/qwen2.5-0.5b-q4_k_m.gguf python -m bench.answers --sample 200

Starts the suite (embedded, free ports) on the same data directory as bench.retrieval_pool, so
the pooled knowledge base is reused (paragraphs it lacks are uploaded first), asks the sampled
questions through POST /api/v1/chat and writes bench/results/answers.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench.retrieval_pool import FILES, KB, RESULTS
from bench.suite import REPO, running_suite
from services.cli.evaluation.answer_eval import ask_all, score_answers
from services.cli.evaluation.corpus import fill_kb, prepare_kb
from services.cli.evaluation.datasets import default_datasets_dir, load_squad, sample_set
from services.cli.evaluation.report import ANSWER_COLUMNS, write_json
from services.common.client import GatewayClient

logger = logging.getLogger("bench.answers")
DEFAULT_MODEL = REPO / "data" / "models" / "qwen2.5-0.5b-q4_k_m.gguf"


def _markdown(report: dict[str, Any]) -> str:
    head = ["set", "questions", "F1", "EM", "contains gold", "p50 s", "errors"]
    rows = [*report["sets"].items(), ("all", report["overall"])]
    lines = [
        "# Answer quality (chat)",
        "",
        f"Model: `{report['model']}`. Machine: {report['machine']}. Knowledge base "
        f"`{report['knowledge_base']}` (the pooled corpus of bench.retrieval_pool). Questions: "
        f"{report['per_set']} per set, deterministic sample (seed {report['seed']}); Chinese sets "
        "scored with CMRC-style character F1/EM, English with SQuAD F1/EM; 'contains gold': the "
        "reply contains a gold answer after normalisation.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, row in rows:
        cells = [f"{row[c]:.3f}" for c in ANSWER_COLUMNS]
        lat = f"{row['latency_s']['p50']:.1f}"
        lines.append(
            f"| {name} | {row['questions']} | {' | '.join(cells)} | {lat} | {row['errors']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-pool")
    parser.add_argument("--sample", type=int, default=200, help="Questions in all.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("ZHIKU_LLM__MODEL_PATH", str(DEFAULT_MODEL))
    model = Path(os.environ["ZHIKU_LLM__MODEL_PATH"]).name
    full = [load_squad(args.datasets / name) for name in FILES]
    per_set = -(-args.sample // len(full))
    sets = [sample_set(s, None, per_set, args.seed) for s in full]
    started = time.monotonic()
    with running_suite(args.data_dir) as gateway, GatewayClient(gateway, timeout=600) as client:
        prepare_kb(client, KB, reuse=True)
        fill_kb(client, KB, [p for s in full for p in s.paragraphs])
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if done[0] % 10 == 0:
                logger.info("%d/%d questions answered", done[0], per_set * len(sets))

        results = ask_all(client, KB, sets, progress=tick)
    report = {
        "model": model,
        "machine": f"{os.cpu_count()} cores, no GPU, {platform.platform()}",
        "knowledge_base": KB,
        "per_set": per_set,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
        **score_answers(results, sets),
    }
    write_json(args.out / "answers.json", report)
    (args.out / "answers.md").write_text(_markdown(report))
    logger.info("wrote %s", args.out / "answers.md")


if __name__ == "__main__":
    main()
