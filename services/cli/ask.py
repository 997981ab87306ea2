"""``zhiku ask``: one question to a knowledge base: the passages read, the answer, its sources."""

from __future__ import annotations

import typer
from rich.markup import escape

from services.cli.output import console
from services.client import ChatOptions, GatewayClient
from services.common.schemas import AnswerMode, ChatResponse, Citation, SourcesEvent, StepEvent

QUOTE_CHARS = 160


def ask_question(
    client: GatewayClient,
    kb: str,
    question: str,
    stream: bool,
    top_k: int | None,
    verbose: bool = False,
    answer_mode: AnswerMode | None = None,
) -> ChatResponse:
    """Print the passages being read and the answer (token by token when streaming), then the
    sources, and with ``verbose`` the time each step took; return the answer."""
    messages = [{"role": "user", "content": question}]
    options = ChatOptions(top_k=top_k, answer_mode=answer_mode)
    if not stream:
        reply = client.chat(kb, messages, options)
        for step in reply.steps:
            print_step(step)
        typer.echo(reply.answer)
    else:
        reply = _stream(client, kb, messages, options)
    print_sources(reply)
    if verbose:
        print_timings(reply)
    return reply


def _stream(
    client: GatewayClient, kb: str, messages: list[dict[str, str]], options: ChatOptions
) -> ChatResponse:
    streamed: list[str] = []
    for item in client.chat_stream(kb, messages, options):
        if isinstance(item, StepEvent):
            print_step(item)
            continue
        if isinstance(item, SourcesEvent):
            print_reading(item)
            continue
        if isinstance(item, ChatResponse):
            typer.echo("")
            if "".join(streamed).strip() != item.answer.strip():
                # The gateway replaced the streamed draft; the final answer is what counts.
                typer.echo(item.answer)
            return item
        streamed.append(item)
        typer.echo(item, nl=False)
    raise AssertionError("chat_stream always ends with a ChatResponse or raises")


def print_step(step: StepEvent) -> None:
    """One search of a deep chat: what was searched where, and the documents it found."""
    found = ", ".join(f"{h.document_name} ({h.score:.2f})" for h in step.hits) or "nothing"
    where = f"{step.query} @ {step.knowledge_base}"
    console.print(f"[dim]步骤 / step {step.step}: {escape(where)} → {escape(found)}[/dim]")


def print_reading(event: SourcesEvent) -> None:
    """The passages retrieved, before the answer starts: what the model is reading."""
    count = len(event.sources)
    console.print(f"[dim]正在阅读 {count} 段资料… / reading {count} passages…[/dim]")
    for passage in event.sources:
        console.print(f"[dim]{_line(passage)}[/dim]")
    if count:
        console.print("")


def print_sources(reply: ChatResponse) -> None:
    """The citations as ``[n] document: quote`` lines."""
    if not reply.grounded:
        console.print("[yellow]未在文档中找到依据 / not found in the documents[/yellow]")
    if not reply.citations:
        return
    console.print("\n[bold]引用 / Sources[/bold]")
    for c in reply.citations:
        console.print(_line(c))


def print_timings(reply: ChatResponse) -> None:
    """Each step's milliseconds, as the gateway measured them."""
    if reply.timings:
        steps = ", ".join(f"{name} {ms:.0f}" for name, ms in reply.timings.items())
        console.print(f"[dim]timings (ms): {escape(steps)}[/dim]")


def _line(c: Citation) -> str:
    quote = " ".join(c.quote.split())
    if len(quote) > QUOTE_CHARS:
        quote = quote[:QUOTE_CHARS] + "…"
    return f"\\[{c.index}] [cyan]{escape(c.document_name)}[/cyan]: {escape(quote)}"
