"""Journeys' migrations merge by themselves: each journey's branch lives in
journeys/<name>/migrations/, depends on the platform revision it needs, and `upgrade` goes to every
head. Two journeys written side by side (neither knowing the other) upgrade and downgrade together
on a real PostgreSQL, and every branch in the repository follows the convention."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from store.migrate import JOURNEYS, alembic_config, upgrade

BRANCH = """
import sqlalchemy as sa
from alembic import op

revision = "{name}_0001"
down_revision = None
branch_labels = ("{name}",)
depends_on = "0014"


def upgrade() -> None:
    op.create_table("{name}_things", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("{name}_things")
"""


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_two_journeys_added_side_by_side_migrate_without_knowing_each_other(postgres, tmp_path: Path):
    journeys = tmp_path / "journeys"
    for name in ("alpha", "beta"):
        (journeys / name / "migrations").mkdir(parents=True)
        (journeys / name / "migrations" / f"{name}_0001_things.py").write_text(BRANCH.format(name=name))
    url = postgres.create_database("branches")
    heads = ScriptDirectory.from_config(alembic_config(url, journeys)).get_heads()
    # The platform's heads: its trunk's one, and its own labelled branches (the partner portal's).
    platform = ScriptDirectory.from_config(alembic_config(url, tmp_path / "no-journeys")).get_heads()
    assert len([h for h in platform if h[0].isdigit()]) == 1 and "portal_0001" in platform
    assert sorted(heads) == sorted([*platform, "alpha_0001", "beta_0001"])
    upgrade(url, journeys=journeys)
    assert {"alpha_things", "beta_things", "partners"} <= _tables(url)
    command.downgrade(alembic_config(url, journeys), "beta@base")  # one journey's branch goes alone
    tables = _tables(url)
    assert "alpha_things" in tables and "beta_things" not in tables and "partners" in tables


def test_every_journey_branch_follows_the_convention():
    script = ScriptDirectory.from_config(alembic_config("postgresql://"))
    trunk = [r for r in script.walk_revisions() if not r.branch_labels and not r.path.startswith(str(JOURNEYS))]
    assert all(re.fullmatch(r"\d{4}", r.revision) for r in trunk), "the platform's trunk is numbered 0001, 0002, ..."
    for folder in sorted(JOURNEYS.glob("*/migrations")):
        name = folder.parent.name
        revisions = [r for r in script.walk_revisions() if r.path.startswith(str(folder))]
        assert revisions, f"journeys/{name}/migrations holds no revision"
        for rev in revisions:
            assert rev.revision.startswith(f"{name}_"), f"{rev.path}: revision ids are {name}_0001, ..."
            assert name in rev.branch_labels or rev.down_revision, f"{rev.path}: the first revision is labelled {name}"
    assert len([h for h in script.get_heads() if re.fullmatch(r"\d{4}", h)]) == 1, "the trunk has one head"


def test_key_grants_take_over_the_approver_levels_and_give_them_back(postgres):
    """0015 moves each key's MDF approval level into its `grants` (`mdf.approver_level`), and its
    downgrade puts them back."""
    url = postgres.create_database("grants")
    config = alembic_config(url)
    command.upgrade(config, "0014")
    engine = sa.create_engine(url)
    insert = (
        "insert into api_keys (id, key_hash, prefix, role, label, approver_level) values "
        "(gen_random_uuid(), :h, 'cl_x', 'ops', '', :level)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(insert), [{"h": "a" * 64, "level": 2}, {"h": "b" * 64, "level": None}])
        command.upgrade(config, "0015")
        with engine.begin() as conn:
            grants = dict(conn.execute(sa.text("select key_hash, grants from api_keys")).all())
        assert grants == {"a" * 64: {"mdf.approver_level": 2}, "b" * 64: {}}
        command.downgrade(config, "0014")
        with engine.begin() as conn:
            levels = dict(conn.execute(sa.text("select key_hash, approver_level from api_keys")).all())
        assert levels == {"a" * 64: 2, "b" * 64: None}
    finally:
        engine.dispose()
