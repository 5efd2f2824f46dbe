"""key grants: what the journeys grant an API key (`JourneySpec.grants`) in one JSONB column
`api_keys.grants`, by full name; MDF's approval level moves there from its own column
(`approver_level` -> `grants["mdf.approver_level"]`)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 14:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("grants", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )
    op.execute(
        "update api_keys set grants = jsonb_build_object('mdf.approver_level', approver_level) "
        "where approver_level is not null"
    )
    op.drop_column("api_keys", "approver_level")


def downgrade() -> None:
    op.add_column("api_keys", sa.Column("approver_level", sa.Integer(), nullable=True))
    op.execute(
        "update api_keys set approver_level = (grants ->> 'mdf.approver_level')::int "
        "where grants ? 'mdf.approver_level'"
    )
    op.drop_column("api_keys", "grants")
