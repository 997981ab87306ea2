"""web users, their login sessions, and an owner on conversations

A conversation is owned by a user or by an API key. Rows from before this revision have
neither: they stay readable by admins only.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_users_username", "users", ["username"], unique=True)
    op.create_table(
        "user_knowledge_bases",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "knowledge_base_id",
            sa.Integer(),
            sa.ForeignKey("knowledge_bases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_token_hash", "user_sessions", ["token_hash"], unique=True)
    # Batch mode: SQLite adds a column with a foreign key only by rebuilding the table.
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_conversations_user_id", "users", ["user_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key(
            "fk_conversations_api_key_id", "api_keys", ["api_key_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_conversations_user_id", ["user_id"])
        batch.create_index("ix_conversations_api_key_id", ["api_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_api_key_id")
        batch.drop_index("ix_conversations_user_id")
        batch.drop_constraint("fk_conversations_api_key_id", type_="foreignkey")
        batch.drop_constraint("fk_conversations_user_id", type_="foreignkey")
        batch.drop_column("api_key_id")
        batch.drop_column("user_id")
    op.drop_table("user_sessions")
    op.drop_table("user_knowledge_bases")
    op.drop_table("users")
