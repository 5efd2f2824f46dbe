"""Market development funds: funds per partner and period, the ledger, requests, proof files;
deals linked to the MDF activity that sourced them; an approver level on ops API keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UUID = postgresql.UUID(as_uuid=True)
TS = sa.DateTime(timezone=True)
KINDS = ("allocation", "accrual", "adjustment", "reservation", "release", "payment", "expiry", "clawback", "claim")


def upgrade() -> None:
    op.create_table(
        "mdf_funds",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("partner_id", UUID, sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("partner_id", "period"),
    )
    op.create_index("ix_mdf_funds_partner_id", "mdf_funds", ["partner_id"])
    op.create_table(
        "mdf_requests",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("partner_id", UUID, sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("fund_id", UUID, sa.ForeignKey("mdf_funds.id"), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("activity_type", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("planned_start", sa.Date, nullable=False),
        sa.Column("planned_end", sa.Date, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("requested_amount_minor", sa.BigInteger, nullable=False),
        sa.Column("requested_currency", sa.String(3), nullable=False),
        sa.Column("exchange_rate", sa.String(30), nullable=True),
        sa.Column("partner_share_percent", sa.Numeric(5, 2), nullable=False),
        sa.Column("expected_outcomes", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("awaiting_level", sa.Integer, nullable=True),
        sa.Column("approved_minor", sa.BigInteger, nullable=True),
        sa.Column("claim_minor", sa.BigInteger, nullable=True),
        sa.Column("approved_claim_minor", sa.BigInteger, nullable=True),
        sa.Column("paid_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
    )
    for col in ("partner_id", "fund_id", "period", "state"):
        op.create_index(f"ix_mdf_requests_{col}", "mdf_requests", [col])
    op.create_table(
        "mdf_entries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("fund_id", UUID, sa.ForeignKey("mdf_funds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("partner_id", UUID, nullable=False),
        sa.Column("request_id", UUID, sa.ForeignKey("mdf_requests.id", ondelete="CASCADE"), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(300), unique=True, nullable=True),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False, server_default="{}"),
        sa.Column("at", TS, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(f"kind in ({', '.join(repr(k) for k in KINDS)})", name="mdf_entries_kind"),
        sa.CheckConstraint(
            "amount_minor > 0 or (kind = 'adjustment' and amount_minor <> 0)", name="mdf_entries_amount"
        ),
    )
    for col in ("fund_id", "partner_id", "request_id"):
        op.create_index(f"ix_mdf_entries_{col}", "mdf_entries", [col])
    op.create_table(
        "mdf_proofs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("request_id", UUID, sa.ForeignKey("mdf_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("partner_id", UUID, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage", sa.String(10), nullable=False, server_default="db"),
        sa.Column("storage_key", sa.String(300), nullable=True),
        sa.Column("data", sa.LargeBinary, nullable=True),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_mdf_proofs_request_id", "mdf_proofs", ["request_id"])
    op.create_index("ix_mdf_proofs_partner_id", "mdf_proofs", ["partner_id"])
    op.add_column("deals", sa.Column("mdf_request_id", UUID, nullable=True))
    op.create_index("ix_deals_mdf_request_id", "deals", ["mdf_request_id"])
    op.add_column("api_keys", sa.Column("approver_level", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "approver_level")
    op.drop_index("ix_deals_mdf_request_id", table_name="deals")
    op.drop_column("deals", "mdf_request_id")
    for table in ("mdf_proofs", "mdf_entries", "mdf_requests", "mdf_funds"):
        op.drop_table(table)
