"""Answer quality on a fixed sample: chat answers scored against the sets' gold answers.

    python -m bench.answers [--sample 200] [--minutes M] [--levers 4] [--not-in-kb 17] [--raw 4]

Starts the suite (embedded, free ports) on the same data directory as bench.retrieval_pool, so
the pooled knowledge base is reused (paragraphs it lacks are uploaded first), asks the sampled
questions through POST /api/v1/chat and writes bench/results/answers.{json,md}. The sets take
turns in blocks of a few questions (one language per block keeps the shared prompt prefix in the
model's context) and the report is rewritten after every block, so a run stopped by
``--minutes`` still covers every set evenly and says how many questions it answered.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from bench.answer_levers import lever_runs, levers_markdown, not_found_run, raw_prompt_reference
from bench.report import RESULTS, machine_line
from bench.retrieval_pool import FILES, KB
from bench.suite import REPO, running_suite
from services.client import ChatOptions, GatewayClient
from services.evaluation import (
    AnswerResult,
    EvalSet,
    Question,
    answer_markdown,
    ask_one,
    default_datasets_dir,
    fill_kb,
    load_squad,
    prepare_kb,
    sample_set,
    score_answers,
    write_json,
)

logger = logging.getLogger("bench.answers")
DEFAULT_MODEL = REPO / "data" / "models" / "qwen2.5-1.5b-q4_k_m.gguf"  # the default model


def _blocks(sets: list[EvalSet], size: int) -> list[tuple[EvalSet, list[Question]]]:
    """Each set's questions cut into blocks of ``size``, the sets taking turns."""
    cut = [[(s, s.questions[i : i + size]) for i in range(0, len(s.questions), size)] for s in sets]
    return [block for turn in zip(*cut, strict=False) for block in turn]


def _write(args: argparse.Namespace, base: dict[str, Any], results: list[AnswerResult],
           sets: list[EvalSet], started: float) -> None:  # fmt: skip
    report = {
        **base,
        "asked": len(results),
        "seconds": round(time.monotonic() - started, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **score_answers(results, sets),
    }
    write_json(args.out / "answers.json", report)
    (args.out / "answers.md").write_text(answer_markdown(report) + levers_markdown(report))


def _earlier(path: Path, sets: list[EvalSet]) -> tuple[list[AnswerResult], str | None]:
    """A stopped run's answers to questions still in the sample, and the machine it ran on."""
    if not path.exists():
        return [], None
    earlier = json.loads(path.read_text())
    by_id = {(q.set_name, q.question_id): (q, s.language) for s in sets for q in s.questions}
    kept = []
    for row in earlier["samples"]:
        found = by_id.get((row["set"], row["id"]))
        if found is not None and row["error"] is None:
            scores = {k: row[k] for k in ("f1", "em", "contains")}
            kept.append(
                AnswerResult(found[0], found[1], row["answer"], scores, row["seconds"],
                             None, row.get("sources_s"), row.get("first_token_s"),
                             row.get("not_found", False))
            )  # fmt: skip
    logger.info("resuming with %d answers from %s", len(kept), path)
    return kept, earlier.get("machine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-pool")
    parser.add_argument("--sample", type=int, default=200, help="Questions in all.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--block", type=int, default=5, help="Questions per set per turn.")
    parser.add_argument("--minutes", type=float, default=0, help="Stop after a block past this.")
    parser.add_argument("--resume", action="store_true", help="Keep the answers already in --out.")
    parser.add_argument(
        "--not-in-kb", type=int, default=17, help="Unanswerable questions per pair (0: none)."
    )
    parser.add_argument(
        "--raw",
        type=int,
        default=4,
        help="Questions for raw llama.cpp on the whole-passage prompt (0: none).",
    )
    parser.add_argument(
        "--levers",
        type=int,
        default=4,
        help="Questions per set answered with each lever off (0: none).",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("ZHIKU_LLM__MODEL_PATH", str(DEFAULT_MODEL))
    full = [load_squad(args.datasets / name) for name in FILES]
    per_set = -(-args.sample // len(full))
    sets = [sample_set(s, None, per_set, args.seed) for s in full]
    base = {
        "model": Path(os.environ["ZHIKU_LLM__MODEL_PATH"]).name,
        "machine": machine_line(),
        "knowledge_base": KB,
        "per_set": per_set,
        "seed": args.seed,
    }
    started = time.monotonic()
    earlier_path = args.out / "answers.json"
    results, earlier_machine = _earlier(earlier_path, sets) if args.resume else ([], None)
    if results and earlier_machine and earlier_machine != base["machine"]:
        # Latencies of resumed answers were measured there, not here: say so in the report.
        base["machine"] += f"; {len(results)} answers resumed from a run on {earlier_machine}"
    done = {(r.question.set_name, r.question.question_id) for r in results}
    with running_suite(args.data_dir) as gateway, GatewayClient(gateway, timeout=600) as client:
        prepare_kb(client, KB, reuse=True)
        fill_kb(client, KB, [p for s in full for p in s.paragraphs])
        options = ChatOptions()
        for evalset, questions in _blocks(sets, args.block):
            todo = [q for q in questions if (q.set_name, q.question_id) not in done]
            if not todo:
                continue
            results += [ask_one(client, KB, q, evalset.language, options) for q in todo]
            _write(args, base, results, sets, started)
            logger.info("%d/%d questions answered", len(results), per_set * len(sets))
            if args.minutes and time.monotonic() - started > args.minutes * 60:
                logger.warning("stopping after %.0f minutes (--minutes)", args.minutes)
                break
        by_name = {s.name: s for s in full}
        if args.not_in_kb:
            base["not_in_kb"] = not_found_run(client, by_name, args.not_in_kb, args.seed).summary()
            _write(args, base, results, sets, started)
        if args.raw:
            model = Path(os.environ["ZHIKU_LLM__MODEL_PATH"])
            questions = [s.questions[0] for s in sets][: args.raw]
            base["raw_reference"] = raw_prompt_reference(model, client, KB, questions)
            _write(args, base, results, sets, started)
    if args.levers:
        picked = {(s.name, q.question_id) for s in sets for q in s.questions[: args.levers]}
        default = [r for r in results if (r.question.set_name, r.question.question_id) in picked]
        subsample = [(r.question, r.language) for r in default]
        base["levers"] = lever_runs(args.data_dir, KB, subsample, default)
        _write(args, base, results, sets, started)
    logger.info("wrote %s", args.out / "answers.md")


if __name__ == "__main__":
    main()
