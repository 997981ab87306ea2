"""ids of knowledge bases, documents and chunks are never handed out again (SQLite)

A chunk id is the key of its vector in the retriever. SQLite without AUTOINCREMENT gives a deleted
row's id (the largest one) to the next insert, so a vector added late for a deleted chunk would
name a new chunk, possibly in another knowledge base. PostgreSQL's sequences never go back: only
SQLite's tables are rebuilt, rows kept.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Parents first: a rebuilt table keeps its foreign keys by name.
TABLES = ("knowledge_bases", "documents", "chunks")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
