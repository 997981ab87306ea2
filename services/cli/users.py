"""``zhiku users``: web users, managed on the database itself (the first user needs no login)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from services.cli.keys import open_database
from services.cli.output import console, fail
from services.common import users

users_app = typer.Typer(
    help="Manage the web app's users (works on ZHIKU_DATABASE_URL directly).",
    no_args_is_help=True,
)


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="The name to log in with.")],
    admin: Annotated[bool, typer.Option("--admin", help="Full rights on everything.")] = False,
    kb: Annotated[
        list[str] | None, typer.Option("--kb", help="A knowledge base the user may use.")
    ] = None,
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ZHIKU_NEW_USER_PASSWORD",
            help="Asked for when not given (never put it on the command line).",
        ),
    ] = "",
) -> None:
    """Add a user; only an argon2id hash of the password is stored."""
    try:
        body = users.UserCreate(
            username=username, password=password, admin=admin, knowledge_bases=kb or []
        )
    except ValidationError as exc:
        fail("validation_error", "; ".join(_message(e) for e in exc.errors()))
        return
    with open_database() as session:
        created = users.create_user(session, body)
    scope = "admin" if created.admin else "user of " + ", ".join(created.knowledge_bases)
    console.print(f"added user {escape(created.username)} ({escape(scope)})")


def _message(error: object) -> str:
    detail = dict(error)  # type: ignore[call-overload]
    where = ".".join(str(part) for part in detail.get("loc", ()))
    text = str(detail["msg"]).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


@users_app.command("list")
def list_() -> None:
    """List the users and what they may use."""
    with open_database() as session:
        rows = [users.to_public(user) for user in users.list_users(session)]
    table = Table("Username", "Rights", "Created")
    for user in rows:
        rights = "admin" if user.admin else "search, chat: " + ", ".join(user.knowledge_bases)
        table.add_row(escape(user.username), escape(rights), user.created_at.strftime("%Y-%m-%d"))
    console.print(table)
    console.print(f"{len(rows)} user(s)")


@users_app.command("remove")
def remove(username: Annotated[str, typer.Argument(help="Name from 'zhiku users list'.")]) -> None:
    """Remove a user and end its logins; its conversations stay, for admins only."""
    with open_database() as session:
        users.remove_user(session, username)
    console.print(f"[green]removed[/green] user {escape(username)}")
