"""Actors in words, for the pages: who decided, who did what on the timeline."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ApiKey, Cam, Partner
from store.models.web import WebOperator


async def actor_names(session: AsyncSession, who: list[str]) -> dict[str, str]:
    """Actors in words: 'cam:<id>' -> 'Casey (CAM)', 'ops:<id>' -> 'Olga (ops)' or 'ops (API key
    ab12...)', 'partner:<id>' -> 'Contoso Cloud (partner)', 'journey:deal-<id>' -> 'the deal journey'."""
    ids: dict[str, set[uuid.UUID]] = {"cam": set(), "ops": set(), "partner": set()}
    for actor in who:
        kind, _, ident = (actor or "").partition(":")
        if kind in ids:
            try:
                ids[kind].add(uuid.UUID(ident))
            except ValueError:
                pass
    names: dict[str, str] = {}
    lookups = (
        ("cam", select(Cam.id, Cam.name).where(Cam.id.in_(ids["cam"])), "{} (CAM)"),
        ("ops", select(WebOperator.id, WebOperator.name).where(WebOperator.id.in_(ids["ops"])), "{} (ops)"),
        ("ops", select(ApiKey.id, ApiKey.prefix).where(ApiKey.id.in_(ids["ops"])), "ops (API key {}…)"),
        ("partner", select(Partner.id, Partner.name).where(Partner.id.in_(ids["partner"])), "{} (partner)"),
    )
    for kind, stmt, shape in lookups:
        if ids[kind]:
            for row_id, name in (await session.execute(stmt)).all():
                names.setdefault(f"{kind}:{row_id}", shape.format(name))
    for actor in who:
        if (actor or "").startswith("journey:"):
            names[actor] = f"the {actor.removeprefix('journey:').split('-', 1)[0]} journey"
    return {a: names.get(a, a) for a in who}
