"""Partner health in the workspace: Today's early warnings (an open episode, with its reason),
the Partner page's health section (score, band, contributions, the latest changes) and the CAM
capacity page for ops."""

from __future__ import annotations

from fastapi import HTTPException, Request
from sqlalchemy import func, select

from api.deps import SessionDep
from api.web.actions import view
from api.web.items import Section, TodayContext, TodayItem, provider, section
from api.web.pages import render
from api.web.security import signed_in
from domain.enums import Role, Tier
from journeys.health import service
from journeys.health.contract import cam_load
from journeys.health.domain import JOURNEY
from journeys.health.models import HealthEpisode, HealthReengagement
from store import repo
from store.models import Cam, Partner


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
        )
        for episode, partner in (await ctx.session.execute(stmt)).all()
    ]


@provider("health-dark")
async def dark_items(ctx: TodayContext) -> list[TodayItem]:
    """Dark partners whose re-engagement emails went unanswered (ops), until the partner acts."""
    stmt = ctx.responsible(
        select(HealthReengagement, Partner)
        .join(Partner, Partner.id == HealthReengagement.partner_id)
        .where(HealthReengagement.escalated_at.is_not(None), HealthReengagement.closed_at.is_(None))
        .order_by(HealthReengagement.escalated_at)
    )
    return [
        TodayItem(
            kind="health-dark",
            label="Dark partner",
            partner_id=partner.id,
            partner_name=partner.name,
            title=f"Dark partner: {row.emails} re-engagement emails unanswered",
            detail=f"last step suggested: {row.last_step}" if row.last_step else "no activity since enrolment",
            deadline=None,
            deadline_label="since",
            entity_id=f"{partner.id}:dark:{row.spell}",
        )
        for row, partner in (await ctx.session.execute(stmt)).all()
    ]


@section("health")
async def health_section(session, partner: Partner, ctx: TodayContext) -> Section | None:
    out = await service.health(session, partner)
    if out.score is None:
        return None
    return Section(title="Health", template="health/health.html.j2", context={"health": out}, order=5)


@view(JOURNEY, "/cams/capacity")
async def capacity_page(request: Request, session: SessionDep):
    """Every CAM's load against the policy (ops): partners by tier, the share of a CAM they take."""
    user = await signed_in(request, session)
    if user.principal.role != Role.ops:
        raise HTTPException(403, detail="the CAM capacity page is for ops")
    policy = (await repo.current_policy(session)).policy.health
    rows = await session.execute(
        select(Partner.cam_id, Partner.tier, func.count())
        .where(Partner.cam_id.is_not(None))
        .group_by(Partner.cam_id, Partner.tier)
    )
    by_cam: dict = {}
    for cam_id, tier, n in rows.all():
        by_cam.setdefault(cam_id, {})[Tier(tier)] = n
    cams = (await session.scalars(select(Cam).order_by(Cam.name, Cam.id))).all()
    loads = [(cam, cam_load(by_cam.get(cam.id, {}), policy)) for cam in cams]
    return render(request, "health/capacity", user, loads=loads, tiers=list(Tier))


@view(JOURNEY, "/program")
async def program_page(request: Request, session: SessionDep):
    """The program figures (ops): active and dark partner rates against their targets, the median
    time to first deal."""
    user = await signed_in(request, session)
    if user.principal.role != Role.ops:
        raise HTTPException(403, detail="the program figures are for ops")
    return render(request, "health/program", user, figures=await service.program(session))
