"""Raw answers for calibrating the not-found check: the model's reply with the grounding hold off,
and the whole passages it read, for answerable and unanswerable questions.

    python -m bench.grounding_data [--per-set 10] [--per-pair 14] [--seed 2] [--out FILE]
    python -m bench.grounding_data --table [--out FILE]    # the shares, from FILE, no model

Answerable: a sample of each set asked of the pooled knowledge base (bench.retrieval_pool's);
unanswerable: questions of XQuAD and DRCD asked of a knowledge base of CMRC's paragraphs only,
whose answer CMRC lacks (bench.answer_levers' not-found set). The hold is off so every reply is
what the model wrote; ``llm_worker.grounding`` is tuned on these rows (seed 2) and reported on the
answer run's sample (seed 1). Writes data/grounding-<seed>.json (a working file); ``--table``
reads it and writes bench/results/grounding.{json,md}: for each share, the replies the check
would turn into "not found".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from bench.answer_levers import NOT_IN_KB, NOT_IN_KB_PAIRS
from bench.answers import DEFAULT_MODEL
from bench.report import machine_line, write_results
from bench.retrieval_pool import FILES, KB
from bench.suite import REPO, running_suite
from llm_worker.grounding import held_sentence
from services.client import GatewayClient
from services.common.answers import is_not_found, support_ratio
from services.common.schemas import ChatResponse, SourcesEvent
from services.evaluation import (
    Question,
    answer_scores,
    default_datasets_dir,
    fill_kb,
    load_squad,
    prepare_kb,
    sample_set,
)
from services.evaluation.unanswerable import gate_cases

logger = logging.getLogger("bench.grounding_data")


def _row(
    client: GatewayClient, kb: str, question: Question, language: str, can: bool
) -> dict[str, Any]:
    """One question's reply and the full text of every passage the model was given."""
    sources: list[int] = []
    answer = ""
    for event in client.chat_stream(kb, [{"role": "user", "content": question.text}]):
        if isinstance(event, SourcesEvent):
            sources = [s.chunk_id for s in event.sources]
        elif isinstance(event, ChatResponse):
            answer = event.answer
    passages = [client.get_chunk(kb, chunk_id).text for chunk_id in sources]
    scores = answer_scores(answer, question.answers, language) if can else {}
    return {
        "set": question.set_name, "id": question.question_id, "question": question.text,
        "answerable": can, "answer": answer, "passages": passages,
        "contains": scores.get("contains"), "gold": list(question.answers),
    }  # fmt: skip


GRID = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)


def share_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per share: how many replies the check would turn into not-found, of each kind."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def refused(row: dict[str, Any], share: float) -> bool:
        first = held_sentence(row["answer"])
        return is_not_found(first) or support_ratio(first, row["passages"]) < share

    def rate(kind: list[dict[str, Any]], share: float, right_only: bool = False) -> float:
        hits = sum(refused(r, share) for r in kind if bool(r["contains"]) or not right_only)
        return round(hits / max(1, len(kind)), 3)

    return [
        {"share": share, "answerable_refused": rate(answerable, share),
         "right_answers_refused": rate(answerable, share, right_only=True),
         "unanswerable_refused": rate(unanswerable, share)}
        for share in GRID
    ]  # fmt: skip


def write_table(path: Path) -> None:
    rows = json.loads(path.read_text())
    table = share_table(rows)
    n_yes = sum(r["answerable"] for r in rows)
    report = {"machine": machine_line(), "source": path.name, "answerable": n_yes,
              "unanswerable": len(rows) - n_yes, "shares": table}  # fmt: skip
    lines = [
        "# The grounding check's share",
        "",
        f"Raw answers (the hold off) from `python -m bench.grounding_data` ({path.name}): "
        f"{n_yes} answerable questions of the pooled knowledge base and {len(rows) - n_yes} "
        "that a knowledge base of CMRC's paragraphs cannot answer. A reply is refused when its "
        "held first sentence is the not-found sentence or has fewer than the share of its words "
        "(Traditional folded to Simplified) in the passages. "
        f"Machine: {report['machine']}.",
        "",
        "| share | answerable refused | right answers refused | unanswerable refused |",
        "|---|---|---|---|",
        *(
            f"| {t['share']} | {t['answerable_refused']:.3f} | {t['right_answers_refused']:.3f} "
            f"| {t['unanswerable_refused']:.3f} |"
            for t in table
        ),
        "",
    ]
    write_results("grounding", report, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=default_datasets_dir(REPO))
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench-pool")
    parser.add_argument("--per-set", type=int, default=10)
    parser.add_argument("--per-pair", type=int, default=14)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="Only tabulate --out's answers.")
    args = parser.parse_args()
    out = args.out or REPO / "data" / f"grounding-{args.seed}.json"
    if args.table:
        write_table(out)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("ZHIKU_LLM__MODEL_PATH", str(DEFAULT_MODEL))
    full = {s.name: s for s in (load_squad(args.datasets / name) for name in FILES)}
    rows: list[dict[str, Any]] = []
    env = {"ZHIKU_LLM__GROUNDING_HOLD": "false"}
    suite = running_suite(args.data_dir, env)
    with suite as gateway, GatewayClient(gateway, timeout=600) as client:
        prepare_kb(client, KB, reuse=True)
        fill_kb(client, KB, [p for s in full.values() for p in s.paragraphs])
        prepare_kb(client, NOT_IN_KB, reuse=True)
        fill_kb(client, NOT_IN_KB, full["cmrc"].paragraphs)
        unanswerable = gate_cases(full, args.per_pair, args.seed, (), NOT_IN_KB_PAIRS)
        asks = [(NOT_IN_KB, c.question, False) for c in unanswerable] + [
            (KB, q, True)
            for evalset in full.values()
            for q in sample_set(evalset, None, args.per_set, args.seed).questions
        ]
        for n, (kb, question, can) in enumerate(asks, start=1):
            language = full[question.set_name].language
            rows.append(_row(client, kb, question, language, can))
            out.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
            logger.info("%d/%d questions asked", n, len(asks))
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
