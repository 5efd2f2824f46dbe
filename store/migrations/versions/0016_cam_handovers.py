"""cam handovers: a CAM's partners handed over to another CAM by a durable workflow
(`cam-handover-{id}`); the row holds the request and the progress per partner

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 17:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cam_handovers",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("from_cam_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("cams.id"), nullable=False),
        sa.Column("to_cam_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("cams.id"), nullable=False),
        sa.Column("partner_ids", postgresql.JSONB(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("progress", postgresql.JSONB(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_cam_handovers_from_cam_id", "cam_handovers", ["from_cam_id"])


def downgrade() -> None:
    op.drop_index("ix_cam_handovers_from_cam_id", table_name="cam_handovers")
    op.drop_table("cam_handovers")
