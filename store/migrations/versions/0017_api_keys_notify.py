"""api keys announce their changes: every UPDATE, DELETE or TRUNCATE of `api_keys` sends a
notification on the channel `camlights_api_keys` when it commits, so an API process that keeps
the keys it looked up (api/keycache.py) drops them at once, whichever process or tool changed a key

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 04:30:00
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

CHANNEL = "camlights_api_keys"  # api/keycache.py CHANNEL


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION camlights_api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_OP);
            RETURN NULL;
        END $$
        """
    )
    # One notification per statement (a CAM's deactivation revokes all its keys in one UPDATE);
    # PostgreSQL delivers it when the transaction commits, never for a rollback.
    op.execute(
        "CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION camlights_api_keys_changed()"
    )
    op.execute(
        "CREATE TRIGGER api_keys_truncated AFTER TRUNCATE ON api_keys "
        "FOR EACH STATEMENT EXECUTE FUNCTION camlights_api_keys_changed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_truncated ON api_keys")
    op.execute("DROP TRIGGER api_keys_changed ON api_keys")
    op.execute("DROP FUNCTION camlights_api_keys_changed()")
