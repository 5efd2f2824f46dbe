"""journeys.attention (a journey waiting for ops); customer keys re-computed with the Unicode-aware
normalization (NFKC, invisible characters dropped, casefold, dotted legal forms)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("journeys", sa.Column("attention", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index(
        "ix_journeys_needs_attention", "journeys", ["state"], postgresql_where=sa.text("attention is not null")
    )
    # Deals registered before the new normalization keep their old keys otherwise, and a look-alike
    # registration would not find them: re-key the open ones with the same pure functions.
    from journeys.deal.domain import normalize_company_name, normalize_domain

    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "select id, customer_name, customer_domain from deals where state in ('pending_approval', "
            "'conflict_review', 'approved')"
        )
    ).fetchall()
    for deal_id, name, domain in rows:
        bind.execute(
            sa.text("update deals set customer_name_key = :n, customer_key = :d where id = :id"),
            {"n": normalize_company_name(name), "d": normalize_domain(domain), "id": deal_id},
        )


def downgrade() -> None:
    op.drop_index("ix_journeys_needs_attention", table_name="journeys")
    op.drop_column("journeys", "attention")
