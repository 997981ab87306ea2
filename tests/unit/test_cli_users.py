"""``zhiku users`` on a real SQLite database: add (hashed), list, remove."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.cli.main import app
from services.common.db import make_engine, make_sessionmaker
from services.common.models import User

runner = CliRunner()


def test_users_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    monkeypatch.setenv("ZHIKU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ZHIKU_DATABASE_URL", url)
    secret = "typed twice, shown never"
    added = runner.invoke(app, ["users", "add", "root", "--admin"], input=f"{secret}\n{secret}\n")
    assert added.exit_code == 0, added.output
    assert "added user root (admin)" in added.output and secret not in added.output
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        stored = session.scalars(select(User.password_hash)).one()
    engine.dispose()
    assert stored.startswith("$argon2id$")
    short = runner.invoke(app, ["users", "add", "bob", "--admin"], input="short\nshort\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    unscoped = runner.invoke(app, ["users", "add", "bob"], input=f"{secret}\n{secret}\n")
    assert unscoped.exit_code == 1 and "at least one knowledge base" in unscoped.output
    listed = runner.invoke(app, ["users", "list"])
    assert "root" in listed.output and "1 user(s)" in listed.output
    assert runner.invoke(app, ["users", "remove", "root"]).exit_code == 0
    missing = runner.invoke(app, ["users", "remove", "root"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
