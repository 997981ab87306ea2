"""stream events carry the time they were written, so rows nobody read to the end are swept

A generation whose reader went away (a gateway restarted mid-answer) leaves its events and its
cancel marker behind in the embedded token stream. The time lets the writers sweep them.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stream_events") as batch:
        batch.add_column(
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch.create_index("ix_stream_events_created_at", ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("stream_events") as batch:
        batch.drop_index("ix_stream_events_created_at")
        batch.drop_column("created_at")
