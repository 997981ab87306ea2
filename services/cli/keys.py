"""``zhiku keys``: API keys, managed on the database itself (the first key needs no key)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from services.cli.output import console, fail
from services.common import api_keys
from services.common.db import make_engine, make_sessionmaker, upgrade_database
from services.common.errors import ZhikuError
from services.common.settings import Settings

keys_app = typer.Typer(
    help="Manage API keys (works on ZHIKU_DATABASE_URL directly, not through the gateway).",
    no_args_is_help=True,
)


@contextmanager
def open_database() -> Iterator[Session]:
    """A session on the configured database, migrated first so a fresh install works."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    except ZhikuError as exc:
        fail(exc.error_type, exc.message)
    finally:
        engine.dispose()


@keys_app.command("create")
def create(
    admin: Annotated[bool, typer.Option("--admin", help="Full rights on everything.")] = False,
    kb: Annotated[
        list[str] | None, typer.Option("--kb", help="A knowledge base a user key may use.")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key.")] = "",
) -> None:
    """Create a key and print it once: only its hash is stored."""
    try:
        body = api_keys.ApiKeyCreate(admin=admin, knowledge_bases=kb or [], name=name)
    except ValidationError as exc:
        fail(
            "validation_error",
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()),
        )
        return
    with open_database() as session:
        created = api_keys.create_key(session, body)
    scope = "admin" if created.admin else "user of " + ", ".join(created.knowledge_bases)
    console.print(f"created key {created.id} ({escape(scope)}); it is shown only this once:")
    # Plain print: rich could wrap the token, and scripts read this line.
    print(created.token)


@keys_app.command("list")
def list_() -> None:
    """List the keys (never the tokens: only their first characters)."""
    with open_database() as session:
        keys = [api_keys.to_public(key) for key in api_keys.list_keys(session)]
    table = Table("ID", "Name", "Starts with", "Rights", "Created", "Revoked")
    for key in keys:
        rights = "admin" if key.admin else "search, chat: " + ", ".join(key.knowledge_bases)
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else ""
        table.add_row(
            str(key.id),
            escape(key.name),
            escape(key.prefix) + "…",
            escape(rights),
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            revoked,
        )
    console.print(table)
    console.print(f"{sum(1 for k in keys if k.revoked_at is None)} active key(s)")


@keys_app.command("revoke")
def revoke(key_id: Annotated[int, typer.Argument(help="ID from 'zhiku keys list'.")]) -> None:
    """Revoke a key; the gateway refuses it from the next request on."""
    with open_database() as session:
        key = api_keys.revoke_key(session, key_id)
        prefix = key.prefix
    console.print(f"[green]revoked[/green] key {key_id} ({escape(prefix)}…)")
