"""``zhiku ask``: one question to a knowledge base, answer streamed, then its sources."""

from __future__ import annotations

import typer
from rich.markup import escape

from services.cli.output import console
from services.client import ChatOptions, GatewayClient
from services.common.schemas import ChatResponse

QUOTE_CHARS = 160


def ask_question(
    client: GatewayClient, kb: str, question: str, stream: bool, top_k: int | None
) -> ChatResponse:
    """Print the answer (token by token when streaming), then the sources; return the answer."""
    messages = [{"role": "user", "content": question}]
    if not stream:
        reply = client.chat(kb, messages, ChatOptions(top_k=top_k))
        typer.echo(reply.answer)
    else:
        reply = _stream(client, kb, messages, top_k)
    print_sources(reply)
    return reply


def _stream(
    client: GatewayClient, kb: str, messages: list[dict[str, str]], top_k: int | None
) -> ChatResponse:
    streamed: list[str] = []
    for item in client.chat_stream(kb, messages, ChatOptions(top_k=top_k)):
        if isinstance(item, ChatResponse):
            typer.echo("")
            if "".join(streamed).strip() != item.answer.strip():
                # The gateway replaced the streamed draft; the final answer is what counts.
                typer.echo(item.answer)
            return item
        streamed.append(item)
        typer.echo(item, nl=False)
    raise AssertionError("chat_stream always ends with a ChatResponse or raises")


def print_sources(reply: ChatResponse) -> None:
    """The citations as ``[n] document: quote`` lines."""
    if not reply.grounded:
        console.print("[yellow]未在文档中找到依据 / not found in the documents[/yellow]")
    if not reply.citations:
        return
    console.print("\n[bold]引用 / Sources[/bold]")
    for c in reply.citations:
        quote = " ".join(c.quote.split())
        if len(quote) > QUOTE_CHARS:
            quote = quote[:QUOTE_CHARS] + "…"
        console.print(f"\\[{c.index}] [cyan]{escape(c.document_name)}[/cyan]: {escape(quote)}")
