"""Apply the Alembic migrations programmatically (used by `camlights migrate`, the dev stack and tests).

Migrations are branches that merge by themselves, never by hand re-pointing:
- the platform's trunk is `store/migrations/versions/` (0001, 0002, ...: one line of revisions);
- each journey keeps its own in `journeys/<name>/migrations/`, found by that convention: a branch
  labelled with the journey's name whose first revision has `down_revision = None` and
  `depends_on` the platform revision it needs (e.g. "0014"); its revisions are named
  `<name>_0001`, `<name>_0002`, ... and chain within the branch.
Two journeys added side by side each bring their own branch; `upgrade` goes to every head, so
neither has to know the other (tests/kit/test_migrations.py)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent
JOURNEYS = HERE.parent / "journeys"


def version_locations(journeys: Path = JOURNEYS) -> list[Path]:
    """The platform's trunk and every journey's branch (journeys/<name>/migrations/)."""
    return [HERE / "migrations" / "versions", *sorted(p for p in journeys.glob("*/migrations") if p.is_dir())]


def alembic_config(database_url: str, journeys: Path = JOURNEYS) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", ":".join(str(p) for p in version_locations(journeys)))
    return cfg


def upgrade(database_url: str, revision: str = "heads", journeys: Path = JOURNEYS) -> None:
    command.upgrade(alembic_config(database_url, journeys), revision)
