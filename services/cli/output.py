"""Console output of the CLI: one place for colours and for turning errors into exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from services.client import GatewayError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def gateway_errors() -> Iterator[None]:
    """Print a GatewayError as ``error_type: error`` in red and exit 1, without a traceback."""
    try:
        yield
    except GatewayError as err:
        fail(err.error_type, err.error)


def fail(error_type: str, message: str) -> None:
    """Print ``error_type: message`` in red on stderr and exit with status 1."""
    err_console.print(f"[red]{escape(error_type)}: {escape(message)}[/red]")
    raise typer.Exit(1)
