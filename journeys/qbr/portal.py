"""The QBR journey in the partner portal: the open action items the partner owns, by due date."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy import select

from api.portal.items import PortalContext, PortalItem, portal_item
from journeys.qbr.domain import JOURNEY, Owner
from journeys.qbr.models import QbrActionItem


@portal_item(JOURNEY)
async def action_items(ctx: PortalContext) -> list[PortalItem]:
    stmt = (
        select(QbrActionItem)
        .where(
            QbrActionItem.partner_id == ctx.partner_id,
            QbrActionItem.owner == Owner.partner.value,
            QbrActionItem.done_at.is_(None),
            QbrActionItem.cancelled_at.is_(None),
        )
        .order_by(QbrActionItem.due)
    )
    t = ctx.t
    return [
        PortalItem(
            kind=JOURNEY,
            label=t.gettext("QBR action item"),
            title=item.title,
            detail=t.gettext("agreed at the %(period)s review", period=item.period),
            deadline=datetime.combine(item.due, time(23, 59), UTC),
            deadline_label=t.gettext("due"),
            entity_id=f"{item.period}/{item.item_no}",
        )
        for item in (await ctx.session.scalars(stmt)).all()
    ]
