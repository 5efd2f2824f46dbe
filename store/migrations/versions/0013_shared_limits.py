"""shared limits: failed authentications, decision links and sign-ins counted in one table for
every API process; retrying steps indexed for ops

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05 11:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(op.f("ix_rate_limits_window_start"), "rate_limits", ["window_start"], unique=False)
    op.create_table(
        "retrying_steps",
        sa.Column("workflow_id", sa.String(length=200), nullable=False),
        sa.Column("activity_id", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("activity", sa.String(length=200), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "activity_id"),
    )
    op.create_index(op.f("ix_retrying_steps_failing_since"), "retrying_steps", ["failing_since"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_retrying_steps_failing_since"), table_name="retrying_steps")
    op.drop_table("retrying_steps")
    op.drop_index(op.f("ix_rate_limits_window_start"), table_name="rate_limits")
    op.drop_table("rate_limits")
