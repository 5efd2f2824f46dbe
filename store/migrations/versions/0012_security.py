"""security: workspace operators' MDF approver level, CAM deactivation, expiring idempotency answers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 11:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("web_operators", sa.Column("approver_level", sa.Integer(), nullable=True))
    op.add_column("cams", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_idempotency_records_created_at"), "idempotency_records", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_records_created_at"), table_name="idempotency_records")
    op.drop_column("cams", "deactivated_at")
    op.drop_column("web_operators", "approver_level")
