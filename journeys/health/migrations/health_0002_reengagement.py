"""partner health: the re-engagement of dark partners without a CAM

Revision ID: health_0002
Revises: health_0001
Create Date: 2026-12-05 17:20:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "health_0002"
down_revision = "health_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_reengagements",
        sa.Column(
            "partner_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("spell", sa.Integer(), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emails", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_step", sa.Text(), nullable=False, server_default=""),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("health_reengagements")
