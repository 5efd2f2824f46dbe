"""partner portal: the people of each partner (partner_users; each partner's contact email becomes
its admin) and their portal sessions

Revision ID: portal_0001
Revises:
Create Date: 2026-12-05 15:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "portal_0001"
down_revision = None
branch_labels = ("portal",)
depends_on = "0014"


def upgrade() -> None:
    op.create_table(
        "partner_users",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "partner_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("language", sa.String(10), server_default="en", nullable=False),
        sa.Column("time_zone", sa.String(64), server_default="UTC", nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("first_signed_in_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_partner_users_partner_id", "partner_users", ["partner_id"])
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("partner_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_portal_sessions_user_id", "portal_sessions", ["user_id"])
    op.create_index("ix_portal_sessions_expires_at", "portal_sessions", ["expires_at"])
    # Every enrolled partner's primary contact becomes its admin (an address shared by partners: the first).
    op.execute(
        """
        INSERT INTO partner_users (id, partner_id, name, email, role, created_by)
        SELECT DISTINCT ON (lower(contact_email)) gen_random_uuid(), id, contact_email, lower(contact_email),
               'admin', 'system'
        FROM partners ORDER BY lower(contact_email), created_at
        ON CONFLICT (email) DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_table("portal_sessions")
    op.drop_table("partner_users")
