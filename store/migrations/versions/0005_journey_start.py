"""journeys: how to start each journey, and whether its start was confirmed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("journeys", sa.Column("workflow_type", sa.String(length=80), nullable=True))
    op.add_column("journeys", sa.Column("start_input", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("journeys", sa.Column("task_queue", sa.String(length=200), nullable=True))
    op.add_column("journeys", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("update journeys set started_at = updated_at")  # every journey before this was started
    op.create_index(op.f("ix_journeys_started_at"), "journeys", ["started_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_journeys_started_at"), table_name="journeys")
    op.drop_column("journeys", "started_at")
    op.drop_column("journeys", "start_input")
    op.drop_column("journeys", "task_queue")
    op.drop_column("journeys", "workflow_type")
