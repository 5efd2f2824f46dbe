"""leads: leads, their offers, the partners' lead preferences, used offer links

Revision ID: leads_0001
Revises: (branch `leads`, depends on the platform's 0014)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "leads_0001"
down_revision = None
branch_labels = ("leads",)
depends_on = "0014"


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=60), nullable=False),
        sa.Column("product_category", sa.String(length=60), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("partner_id", sa.UUID(), nullable=True),
        sa.Column("deal_id", sa.UUID(), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("routing", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    op.create_index("ix_leads_created_at_id", "leads", ["created_at", "id"])
    op.create_index(op.f("ix_leads_domain"), "leads", ["domain"])
    op.create_index(op.f("ix_leads_partner_id"), "leads", ["partner_id"])
    op.create_index(op.f("ix_leads_state"), "leads", ["state"])
    op.create_table(
        "lead_offers",
        sa.Column("lead_id", sa.UUID(), nullable=False),
        sa.Column("offer_no", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.UUID(), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=True),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("offered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("step_key", sa.String(length=250), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lead_id", "offer_no"),
    )
    op.create_index("ix_lead_offers_partner_state", "lead_offers", ["partner_id", "state"])
    op.create_index(op.f("ix_lead_offers_step_key"), "lead_offers", ["step_key"])
    op.create_index(
        "ix_lead_offers_live_expires", "lead_offers", ["expires_at"], postgresql_where=sa.text("state = 'live'")
    )
    op.create_table(
        "lead_preferences",
        sa.Column("partner_id", sa.UUID(), nullable=False),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("countries", postgresql.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("regions", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(length=60)), nullable=False),
        sa.Column("time_zone", sa.String(length=60), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id"),
    )


def downgrade() -> None:
    op.drop_table("lead_preferences")
    op.drop_table("lead_offers")
    op.drop_table("leads")
