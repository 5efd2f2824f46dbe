"""The MDF journey in the partner portal: claims due (an activity ended or running, its claim
window closing `claim_window_days` after its planned end) and claims returned for more proof."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from api.portal.items import PortalContext, PortalItem, portal_item
from journeys.mdf.domain import JOURNEY, MdfState
from journeys.mdf.models import MdfRequest

CLAIMABLE = (MdfState.approved.value, MdfState.running.value, MdfState.claim_returned.value)


@portal_item(JOURNEY)
async def claims_due(ctx: PortalContext) -> list[PortalItem]:
    stmt = (
        select(MdfRequest)
        .where(MdfRequest.partner_id == ctx.partner_id, MdfRequest.state.in_(CLAIMABLE))
        .order_by(MdfRequest.planned_end)
    )
    t = ctx.t
    items = []
    for req in (await ctx.session.scalars(stmt)).all():
        ends = datetime.combine(req.planned_end, time(0), UTC) + timedelta(days=1)
        deadline = ends + ctx.policy.days(ctx.policy.mdf.claim_window_days)
        returned = req.state == MdfState.claim_returned.value
        items.append(
            PortalItem(
                kind=JOURNEY,
                label=t.gettext("MDF claim returned") if returned else t.gettext("MDF claim due"),
                title=req.title,
                detail=t.gettext("approved: %(amount)s", amount=t.money(req.approved_minor or 0, req.currency)),
                deadline=deadline,
                deadline_label=t.gettext("claim by"),
                entity_id=str(req.id),
            )
        )
    return items
