"""The onboarding journey in the partner portal: the milestones still open (due first) on the
home page, each marked done inline through the journey's update (as the API does)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from sqlalchemy import select

from api.portal.i18n import N_
from api.portal.items import PortalActionDep, PortalContext, PortalItem, portal_action, portal_item
from journeys.onboarding import service
from journeys.onboarding.domain import JOURNEY
from journeys.onboarding.models import PartnerMilestone
from journeys.onboarding.schemas import MILESTONE_KEY

# The default policy's milestone titles, in the catalogs (a title ops write is shown as written).
DEFAULT_TITLES = (
    N_("Log in to the partner portal"),
    N_("Complete the first sales training"),
    N_("Earn a first certification"),
    N_("Register a first deal"),
    N_("Agree a joint business plan"),
)


@portal_item(JOURNEY)
async def milestones_due(ctx: PortalContext) -> list[PortalItem]:
    stmt = (
        select(PartnerMilestone)
        .where(PartnerMilestone.partner_id == ctx.partner_id, PartnerMilestone.done_at.is_(None))
        .order_by(PartnerMilestone.due_at)
    )
    t = ctx.t
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("Onboarding step"),
            title=t.gettext(m.title),
            detail=t.gettext("required") if m.required else t.gettext("optional"),
            deadline=m.due_at,
            deadline_label=t.gettext("due"),
            action="onboarding/milestone_done.html.j2",
            entity_id=m.key,
        )
        for m in (await ctx.session.scalars(stmt)).all()
    ]


@portal_action(JOURNEY, "milestone_done", "/milestones/{key}")
async def milestone_done(key: Annotated[str, Path(pattern=MILESTONE_KEY)], ctx: PortalActionDep) -> str:
    """Report one of the partner's milestones done (an unknown key is refused by the journey)."""
    partner = await ctx.partner()
    report = await service.report_milestone(
        ctx.session, ctx.temporal, ctx.principal, partner, key, deadline=ctx.deadline
    )
    return ctx.t.gettext("Already done.") if report.already_done else ctx.t.gettext("Marked as done.")
