"""seed program policy version 1 with the built-in defaults

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import json

import sqlalchemy as sa
from alembic import op

from domain.policy import ProgramPolicy

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(
        sa.text(
            "insert into policy_versions (version, body, created_by) "
            "values (1, cast(:body as jsonb), 'system:defaults') on conflict (version) do nothing"
        ),
        {"body": json.dumps(ProgramPolicy().model_dump(mode="json"))},
    )


def downgrade() -> None:
    op.execute("delete from policy_versions where version = 1 and created_by = 'system:defaults'")
