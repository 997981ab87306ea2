"""The ``zhiku`` command line: ingest files, ask questions, manage knowledge bases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from services.cli.ask import ask_question
from services.cli.eval_cmd import eval_app
from services.cli.ingest import ingest_paths
from services.cli.keys import keys_app
from services.cli.output import console, gateway_errors
from services.cli.users import users_app
from services.client import DEFAULT_GATEWAY_URL, GatewayClient

app = typer.Typer(
    name="zhiku",
    help="知库 zhiku: a self-hosted RAG knowledge assistant (command line client of the gateway).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Manage knowledge bases.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(eval_app, name="eval")

KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name.")]


@app.callback()
def main(
    ctx: typer.Context,
    gateway: Annotated[
        str, typer.Option("--gateway", envvar="ZHIKU_GATEWAY_URL", help="Gateway base URL.")
    ] = DEFAULT_GATEWAY_URL,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="ZHIKU_API_KEY", help="Gateway API key.")
    ] = None,
) -> None:
    """Talk to a zhiku gateway."""
    # A client handed in as ``obj`` (tests, embedding) wins over the options.
    if not isinstance(ctx.obj, GatewayClient):
        ctx.obj = GatewayClient(gateway, api_key=api_key or None)


def _client(ctx: typer.Context) -> GatewayClient:
    client = ctx.find_object(GatewayClient)
    if client is None:  # only when a subcommand is invoked without the app callback
        raise RuntimeError("no gateway client in the command context")
    return client


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or directories (searched recursively).")
    ],
    kb: KbOption,
    create: Annotated[
        bool, typer.Option("--create/--no-create", help="Create the knowledge base if missing.")
    ] = True,
    batch_size: Annotated[int, typer.Option(min=1, max=100, help="Files per upload.")] = 16,
) -> None:
    """Upload documents and follow their ingestion until done or failed."""
    with gateway_errors():
        ok = ingest_paths(_client(ctx), paths, kb, create=create, batch_size=batch_size)
    if not ok:
        raise typer.Exit(1)


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    kb: KbOption,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Stream tokens.")] = True,
    top_k: Annotated[int | None, typer.Option(min=1, max=50, help="Passages to retrieve.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print the time each step took.")
    ] = False,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep/--fast",
            help="Deep: the model may search again (reformulated, or in another knowledge base) "
            "before it answers; each search is printed.",
        ),
    ] = False,
) -> None:
    """Ask a question; the answer is printed with its sources."""
    with gateway_errors():
        ask_question(
            _client(ctx),
            kb,
            question,
            stream=stream,
            top_k=top_k,
            verbose=verbose,
            answer_mode="deep" if deep else None,
        )


@app.command()
def mcp(ctx: typer.Context) -> None:
    """Serve the knowledge bases as MCP tools on stdin/stdout (for Claude Desktop and other
    MCP clients); every call goes to the gateway with --api-key / ZHIKU_API_KEY."""
    from services.cli.mcp_cmd import serve_stdio  # the MCP SDK takes seconds to import

    serve_stdio(_client(ctx))


@kb_app.command("list")
def kb_list(ctx: typer.Context) -> None:
    """List the knowledge bases."""
    with gateway_errors():
        kbs = _client(ctx).list_knowledge_bases()
    table = Table("Name", "Documents", "Embedding", "Description", "Created")
    for item in kbs.data:
        table.add_row(
            escape(item.name),
            str(item.document_count),
            escape(f"{item.embedding_model} ({item.embedding_dim})"),
            escape(item.description),
            item.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)
    console.print(f"{kbs.count} knowledge base(s)")


@kb_app.command("create")
def kb_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new knowledge base.")],
    description: Annotated[str, typer.Option(help="What it holds.")] = "",
) -> None:
    """Create a knowledge base."""
    with gateway_errors():
        created = _client(ctx).create_knowledge_base(name, description)
    console.print(f"[green]created[/green] {escape(created.name)} (id {created.id})")


@kb_app.command("delete")
def kb_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Knowledge base to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a knowledge base and all its documents."""
    # Scripts (no terminal on stdin) are not asked; people at a terminal are.
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Delete knowledge base {name!r} and all its documents?", abort=True)
    with gateway_errors():
        _client(ctx).delete_knowledge_base(name)
    console.print(f"[green]deleted[/green] {escape(name)}")
