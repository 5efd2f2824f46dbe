from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from store.models import Base, import_journey_models

config = context.config
import_journey_models()  # every journey's tables (journeys/<name>/models.py) join the metadata
target_metadata = Base.metadata


def _sync_url() -> str:
    return config.get_main_option("sqlalchemy.url")


def run_migrations_offline() -> None:
    context.configure(url=_sync_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_sync_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
