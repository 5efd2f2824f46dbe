"""leads: a lead records its journey's start (input, task queue, confirmation) for the reconciler

Revision ID: leads_0002
Revises: leads_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "leads_0002"
down_revision = "leads_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("start_input", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("leads", sa.Column("task_queue", sa.String(length=200), nullable=True))
    op.add_column("leads", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_leads_unstarted",
        "leads",
        ["created_at"],
        postgresql_where=sa.text("started_at IS NULL AND start_input IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_unstarted", table_name="leads")
    op.drop_column("leads", "started_at")
    op.drop_column("leads", "task_queue")
    op.drop_column("leads", "start_input")
