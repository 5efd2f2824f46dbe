"""Partner health in the workspace: Today's early warnings (an open episode, with its reason) and
the Partner page's health section (score, band, contributions, the latest changes)."""

from __future__ import annotations

from sqlalchemy import select

from api.web.items import Section, TodayContext, TodayItem, provider, section
from journeys.health import service
from journeys.health.models import HealthEpisode
from store.models import Partner


@provider("health")
async def health_items(ctx: TodayContext) -> list[TodayItem]:
    stmt = ctx.responsible(
        select(HealthEpisode, Partner)
        .join(Partner, Partner.id == HealthEpisode.partner_id)
        .where(HealthEpisode.closed_at.is_(None))
        .order_by(HealthEpisode.opened_at)
    )
    return [
        TodayItem(
            kind="health",
            label="Early warning",
            partner_id=partner.id,
            partner_name=partner.name,
            title=f"Health: {episode.reason}",
            detail="see the partner page for every contribution",
            deadline=None,
            deadline_label="since",
            entity_id=f"{partner.id}:{episode.episode}",
        )  # fmt: skip
        for episode, partner in (await ctx.session.execute(stmt)).all()
    ]


@section("health")
async def health_section(session, partner: Partner, ctx: TodayContext) -> Section | None:
    out = await service.health(session, partner)
    if out.score is None:
        return None
    return Section(title="Health", template="health/health.html.j2", context={"health": out}, order=5)
