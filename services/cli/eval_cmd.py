"""``zhiku eval``: retrieval, answers, deep chat and the not-found gate via the API; parse quality
locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.cli.output import console, fail, gateway_errors
from services.client import GatewayClient
from services.common.schemas import SearchMode
from services.evaluation import (
    RetrievalConfig,
    answer_table,
    ask_all,
    counting,
    ensure_corpus,
    gate_cases_for,
    gate_report,
    gate_scores,
    gate_table,
    load_sets,
    retrieval_table,
    score_answers,
    score_results,
    search_all,
    write_json,
)
from services.evaluation.deep_eval import (
    ask_joined,
    deep_markdown,
    deep_report,
    deep_table,
    join_questions,
)

eval_app = typer.Typer(
    help="Measure retrieval, answer quality and the not-found gate.", no_args_is_help=True
)

DatasetOpt = Annotated[
    list[Path],
    typer.Option("--dataset", exists=True, dir_okay=False, help="SQuAD-layout JSON (repeatable)."),
]
KbOpt = Annotated[str, typer.Option("--kb", help="Scratch knowledge base to fill and search.")]
ReuseOpt = Annotated[
    bool, typer.Option("--reuse", help="Keep the knowledge base; upload only what it lacks.")
]
MaxParOpt = Annotated[int | None, typer.Option(min=1, help="Paragraphs per set (sampled).")]
MaxQOpt = Annotated[int | None, typer.Option(min=1, help="Questions per set (sampled).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the deterministic sampling.")]
IngestTimeoutOpt = Annotated[
    float, typer.Option(min=1, help="Give up waiting for ingestion after this many seconds.")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write the results as JSON here.")]


def _client(ctx: typer.Context) -> GatewayClient:
    client = ctx.find_object(GatewayClient)
    if client is None:
        raise RuntimeError("no gateway client in the command context")
    return client


@eval_app.command("retrieval")
def retrieval(
    ctx: typer.Context,
    dataset: DatasetOpt,
    mode: Annotated[str, typer.Option(help="dense, keyword or hybrid.")] = "hybrid",
    rerank: Annotated[
        bool | None, typer.Option("--rerank/--no-rerank", help="Unset: the gateway's default.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Chunks per search.")] = 10,
    kb: KbOpt = "zhiku-eval",
    reuse: ReuseOpt = False,
    max_paragraphs: MaxParOpt = None,
    max_questions: MaxQOpt = None,
    seed: SeedOpt = 0,
    ingest_timeout: IngestTimeoutOpt = 7200,
    simplified: Annotated[
        bool, typer.Option(help="Also ask Traditional sets' questions in Simplified (OpenCC).")
    ] = True,
    out: OutOpt = None,
) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 and latency of POST /api/v1/search."""
    if mode not in ("dense", "keyword", "hybrid"):
        raise typer.BadParameter("mode must be dense, keyword or hybrid", param_hint="--mode")
    config = RetrievalConfig(_mode(mode) or "hybrid", rerank, k)
    sets = load_sets(dataset, max_paragraphs, max_questions, seed, simplified)
    client = _client(ctx)
    questions = [q for s in sets for q in s.questions]
    with gateway_errors():
        summary = ensure_corpus(client, kb, sets, reuse, console, ingest_timeout)
        with counting(console, f"searching ({config.label})", len(questions)) as bar:
            results = search_all(client, kb, questions, config, summary.aliases, bar)
    report = {"knowledge_base": kb, "seed": seed, **score_results(results, sets, config)}
    console.print(retrieval_table(report))
    if out:
        write_json(out, report)
        console.print(f"wrote {out}")


@eval_app.command("answers")
def answers(
    ctx: typer.Context,
    dataset: DatasetOpt,
    sample: Annotated[int, typer.Option(min=1, help="Questions in all, split across sets.")] = 50,
    mode: Annotated[str | None, typer.Option(help="Retrieval mode; unset: default.")] = None,
    model_name: Annotated[
        str, typer.Option(help="Name of the model the llm worker runs, for the record.")
    ] = "unknown",
    kb: KbOpt = "zhiku-eval",
    reuse: ReuseOpt = False,
    max_paragraphs: MaxParOpt = None,
    seed: SeedOpt = 0,
    ingest_timeout: IngestTimeoutOpt = 7200,
    out: OutOpt = None,
) -> None:
    """F1, EM and the share of replies containing a gold answer, via POST /api/v1/chat."""
    per_set = -(-sample // len(dataset))  # ceiling: every set gets its share
    sets = load_sets(dataset, max_paragraphs, per_set, seed)
    client = _client(ctx)
    total = sum(len(s.questions) for s in sets)
    with gateway_errors():
        ensure_corpus(client, kb, sets, reuse, console, ingest_timeout)
        with counting(console, "asking", total) as bar:
            results = ask_all(client, kb, sets, _mode(mode), bar)
    report = {
        "knowledge_base": kb,
        "model": model_name,
        "seed": seed,
        **score_answers(results, sets),
    }
    console.print(answer_table(report))
    if out:
        write_json(out, report)
        console.print(f"wrote {out}")


@eval_app.command("gate")
def gate(
    ctx: typer.Context,
    dataset: DatasetOpt,
    per_pair: Annotated[int, typer.Option(min=1, help="Questions per pair of sets.")] = 50,
    top_k: Annotated[int, typer.Option(min=1, max=100, help="Passages a chat gets.")] = 5,
    kb: Annotated[str, typer.Option("--kb", help="Prefix of the per-set knowledge bases.")] = (
        "zhiku-gate"
    ),
    reuse: ReuseOpt = False,
    max_paragraphs: MaxParOpt = None,
    seed: SeedOpt = 0,
    ingest_timeout: IngestTimeoutOpt = 7200,
    out: OutOpt = None,
) -> None:
    """How often each min_score refuses answerable and unanswerable questions (no LLM).

    Give two or more of cmrc2018_dev.json, xquad.zh.json, xquad.en.json: each fills its own
    knowledge base, and one set's questions asked of another's are the unanswerable ones.
    """
    sets = {s.name: s for s in load_sets(dataset, max_paragraphs, None, seed)}
    try:
        cases = gate_cases_for(sets, per_pair, seed)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--dataset") from err
    client = _client(ctx)
    kb_of = {name: f"{kb}-{name}" for name in sets}
    with gateway_errors():
        for name, evalset in sets.items():
            ensure_corpus(client, kb_of[name], [evalset], reuse, console, ingest_timeout)
        with counting(console, "searching", len(cases)) as bar:
            scores = gate_scores(client, kb_of, cases, top_k, bar)
    report = {"knowledge_bases": kb_of, "seed": seed, **gate_report(cases, scores)}
    console.print(gate_table(report))
    if out:
        write_json(out, report)
        console.print(f"wrote {out}")


@eval_app.command("tools")
def tools(
    ctx: typer.Context,
    dataset: DatasetOpt,
    questions: Annotated[int, typer.Option(min=1, help="Questions of each kind.")] = 30,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Ask only this many of each kind (a quick check).")
    ] = None,
    model_name: Annotated[
        str, typer.Option(help="Name of the model the llm worker runs, for the record.")
    ] = "unknown",
    kb: KbOpt = "zhiku-eval",
    reuse: ReuseOpt = False,
    max_paragraphs: MaxParOpt = None,
    seed: SeedOpt = 0,
    ingest_timeout: IngestTimeoutOpt = 7200,
    out: OutOpt = None,
) -> None:
    """How often the model searches the knowledge base when, and only when, a question needs it.

    Asks the datasets' questions (they need the documents) and greetings, arithmetic and small
    talk (they do not) via POST /v1/chat/completions with tools; writes JSON and Markdown.
    """
    from services.evaluation.tool_eval import (
        NO_TOOL_QUESTIONS,
        tool_choices,
        tool_markdown,
        tool_report,
        tool_table,
        write_markdown,
    )

    count = min(questions, limit or questions, len(NO_TOOL_QUESTIONS))
    sets = load_sets(dataset, max_paragraphs, -(-count // len(dataset)), seed)
    needing = [(q.text, True) for s in sets for q in s.questions][:count]
    asked = needing + [(text, False) for text in NO_TOOL_QUESTIONS[:count]]
    client = _client(ctx)
    with gateway_errors():
        ensure_corpus(client, kb, sets, reuse, console, ingest_timeout)
        with counting(console, "asking", len(asked)) as bar:
            results = tool_choices(client, kb, asked, bar)
    report = {"knowledge_base": kb, "model": model_name, "seed": seed, **tool_report(results)}
    console.print(tool_table(report))
    if out:
        write_json(out, report)
        write_markdown(out.with_suffix(".md"), tool_markdown(report))
        console.print(f"wrote {out} and {out.with_suffix('.md')}")


@eval_app.command("deep")
def deep(
    ctx: typer.Context,
    dataset: DatasetOpt,
    questions: Annotated[
        int, typer.Option("--questions", "--limit", min=1, help="Joined questions in all.")
    ] = 30,
    model_name: Annotated[
        str, typer.Option(help="Name of the model the llm worker runs, for the record.")
    ] = "unknown",
    kb: KbOpt = "zhiku-deep",
    reuse: ReuseOpt = False,
    max_paragraphs: Annotated[
        int | None, typer.Option(min=2, help="Paragraphs per set (sampled).")
    ] = 60,
    seed: SeedOpt = 0,
    ingest_timeout: IngestTimeoutOpt = 7200,
    out: OutOpt = None,
) -> None:
    """Fast against deep chat on questions joining two questions on different documents.

    Reports how often the reply holds both gold answers, and the latency, per mode; with --out
    also a Markdown table beside the JSON.
    """
    sets = load_sets(dataset, max_paragraphs, None, seed)
    joined = join_questions(sets, questions, seed)
    client = _client(ctx)
    with gateway_errors():
        ensure_corpus(client, kb, sets, reuse, console, ingest_timeout)
        with counting(console, "asking (fast, deep)", 2 * len(joined)) as bar:
            results = ask_joined(client, kb, joined, bar)
    report = {"knowledge_base": kb, "model": model_name, "seed": seed, **deep_report(results)}
    console.print(deep_table(report))
    if out:
        write_json(out, report)
        out.with_suffix(".md").write_text(deep_markdown(report), encoding="utf-8")
        console.print(f"wrote {out} and {out.with_suffix('.md')}")


@eval_app.command("parsing")
def parsing(
    folder: Annotated[
        Path | None, typer.Option("--keep", help="Write the generated corpus here and keep it.")
    ] = None,
    out: OutOpt = None,
) -> None:
    """Parse a generated corpus with known text and tables; report accuracy per format.

    Runs the ingestion parsers on this machine (no gateway): character accuracy, table-cell
    recall, seconds per document with and without OCR, and OCR pages/s warm and end to end.
    """
    from ingestion.loaders import load_text  # the parsers, bounded as in the worker
    from services.common.settings import Settings
    from services.evaluation.ocr_speed import ocr_speed
    from services.evaluation.parse_eval import parse_report, parse_table, run_parse_eval

    limits = Settings().parsing  # ZHIKU_PARSING__… as the worker reads them
    try:
        scores = run_parse_eval(lambda path, kind: load_text(path, kind, limits), folder)
    except FileNotFoundError as err:
        fail("not_found", str(err))
    report = {**parse_report(scores), **ocr_speed(limits)}
    console.print(parse_table(report))
    if out:
        write_json(out, report)
        console.print(f"wrote {out}")


def _mode(value: str | None) -> SearchMode | None:
    if value is None:
        return None
    if value == "dense":
        return "dense"
    return "keyword" if value == "keyword" else "hybrid"
