"""leads: what routing reads (a lead routed at 10,000 partners in a few milliseconds)

Each partner's offers summed up (`lead_partner_stats`, filled from the offers), partners by
country (those serving their own country), lead preferences by territory (GIN), and a partner's
offers with the columns the sums read (an index-only range per partner).

Revision ID: leads_0003
Revises: leads_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "leads_0003"
down_revision = "leads_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_partner_stats",
        sa.Column("partner_id", sa.UUID(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("last_offered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.execute(
        "insert into lead_partner_stats (partner_id, live, accepted, answered, last_offered_at, last_accepted_at) "
        "select partner_id, count(*) filter (where state = 'live'), count(*) filter (where state = 'accepted'), "
        "count(*) filter (where state in ('accepted', 'declined', 'expired')), max(offered_at), "
        "max(answered_at) filter (where state = 'accepted') from lead_offers group by partner_id"
    )
    op.create_index("ix_partners_country", "partners", ["country"])
    op.create_index("ix_lead_preferences_countries", "lead_preferences", ["countries"], postgresql_using="gin")
    op.drop_index("ix_lead_offers_partner_state", table_name="lead_offers")
    op.create_index(
        "ix_lead_offers_partner_state",
        "lead_offers",
        ["partner_id", "state"],
        postgresql_include=["offered_at", "answered_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_lead_offers_partner_state", table_name="lead_offers")
    op.create_index("ix_lead_offers_partner_state", "lead_offers", ["partner_id", "state"])
    op.drop_index("ix_lead_preferences_countries", table_name="lead_preferences")
    op.drop_index("ix_partners_country", table_name="partners")
    op.drop_table("lead_partner_stats")
