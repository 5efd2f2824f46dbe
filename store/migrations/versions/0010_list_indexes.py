"""Indexes for the list endpoints at program scale (bench/README.md shows the plans): lists in
their order (keyset pagination), deals of a state in order, approved deals by protection end

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_partners_created_at_id", "partners", ["created_at", "id"])
    op.create_index("ix_deals_created_at_id", "deals", ["created_at", "id"])
    op.create_index("ix_deals_state_created_at_id", "deals", ["state", "created_at", "id"])
    approved = sa.text("state = 'approved'")
    op.create_index("ix_deals_approved_protected_until", "deals", ["protected_until"], postgresql_where=approved)
    op.drop_index("ix_deals_state", table_name="deals")  # the leading column of ix_deals_state_created_at_id


def downgrade() -> None:
    op.create_index("ix_deals_state", "deals", ["state"])
    op.drop_index("ix_deals_approved_protected_until", table_name="deals")
    op.drop_index("ix_deals_state_created_at_id", table_name="deals")
    op.drop_index("ix_deals_created_at_id", table_name="deals")
    op.drop_index("ix_partners_created_at_id", table_name="partners")
