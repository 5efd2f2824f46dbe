"""coverage versions: the partner's coverage (tier, CAM) is numbered, and each journey record
says which number its journey was told, so that the reconciler re-sends what a journey missed

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 13:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partners", sa.Column("coverage_version", sa.Integer(), server_default="0", nullable=False))
    op.add_column("journeys", sa.Column("coverage_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("journeys", "coverage_version")
    op.drop_column("partners", "coverage_version")
