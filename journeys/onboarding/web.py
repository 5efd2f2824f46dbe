"""Today's onboarding items: partners stuck in onboarding (a required milestone overdue) and
partners whose plan ended at risk. The CAM can mark a milestone done inline."""

from __future__ import annotations

from sqlalchemy import func, select

from api.web.items import TodayContext, TodayItem, column, provider
from domain.enums import PartnerStatus
from journeys.onboarding.models import PartnerMilestone
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
