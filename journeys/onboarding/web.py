"""Today's onboarding items: partners stuck in onboarding (a required milestone overdue) and
partners whose plan ended at risk; the Portfolio's progress column; the Partner page's
milestones. The CAM marks a milestone done inline (the `milestone_done` action)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path
from sqlalchemy import func, select

from api.deps import load_partner
from api.web.actions import ActionDep, action
from api.web.items import Section, TodayContext, TodayItem, column, provider, rows_of, section
from domain.enums import PartnerStatus
from journeys.onboarding import service
from journeys.onboarding.domain import JOURNEY
from journeys.onboarding.models import PartnerMilestone
from journeys.onboarding.schemas import MILESTONE_KEY
from store.models import Partner


@provider("onboarding")
async def onboarding_items(ctx: TodayContext) -> list[TodayItem]:
    stmt = ctx.responsible(
        select(PartnerMilestone, Partner)
        .join(Partner, Partner.id == PartnerMilestone.partner_id)
        .where(
            Partner.status.in_([PartnerStatus.onboarding.value, PartnerStatus.at_risk.value]),
            PartnerMilestone.required.is_(True),
            PartnerMilestone.done_at.is_(None),
            PartnerMilestone.due_at < ctx.now,
        )
        .order_by(PartnerMilestone.due_at)
    )
    items = []
    for milestone, partner in (await ctx.session.execute(stmt)).all():
        at_risk = partner.status == PartnerStatus.at_risk.value
        items.append(
            TodayItem(
                kind="onboarding",
                label="Onboarding at risk" if at_risk else "Onboarding overdue",
                partner_id=partner.id,
                partner_name=partner.name,
                title=milestone.title,
                detail=f"milestone {milestone.key}" + ("; the activation plan ended at risk" if at_risk else ""),
                deadline=milestone.due_at,
                deadline_label="was due",
                action=None if at_risk else "milestone_done",
                entity_id=milestone.key,
            )
        )
    return items


@column("onboarding", "Onboarding", 10)
async def onboarding_progress(session, partner_ids, ctx: TodayContext) -> dict:
    """'3/5' required milestones done (for every partner: done ones stay done)."""
    rows = await session.execute(
        select(
            PartnerMilestone.partner_id,
            func.count().filter(PartnerMilestone.done_at.is_not(None)),
            func.count(),
        )
        .where(PartnerMilestone.partner_id.in_(partner_ids), PartnerMilestone.required.is_(True))
        .group_by(PartnerMilestone.partner_id)
    )
    done = {pid: f"{d}/{n}" for pid, d, n in rows.all()}
    return {pid: done.get(pid) for pid in partner_ids}


@section("onboarding")
async def milestones_section(session, partner: Partner, ctx: TodayContext) -> Section:
    milestones = await rows_of(session, PartnerMilestone, partner, PartnerMilestone.due_at)
    return Section(
        title="Onboarding",
        template="onboarding/milestones.html.j2",
        context={"milestones": milestones, "now": ctx.now},
        order=10,
    )


@action(JOURNEY, "milestone_done", "/partners/{partner_id}/milestones/{key}")
async def milestone_done(
    partner_id: uuid.UUID, key: Annotated[str, Path(pattern=MILESTONE_KEY)], ctx: ActionDep
) -> str:
    """Report a milestone done through the onboarding journey (as the JSON API does)."""
    ctx.about = f"milestone {key}"
    partner = await load_partner(ctx.session, partner_id, ctx.principal)
    report = await service.report_milestone(
        ctx.session, ctx.temporal, ctx.principal, partner, key, deadline=ctx.deadline
    )
    return f"Milestone {key} {'was already done' if report.already_done else 'recorded as done'}."
